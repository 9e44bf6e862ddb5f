"""RecModel: the long-lived recommender, from data to served versions."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from recops_contracts.drift import DriftThresholds
from recops_contracts.training import (
    DatasetSource,
    MlflowSettings,
    ModelHyperparameters,
    OfflineGate,
    TrainingResources,
)
from recops_contracts.wire import DnsName, Quantity
from recops_operator.api.base import ApiModel, Duration, ModelVersionStr, ObjectMeta, cel_rules
from recops_operator.api.conditions import Condition
from recops_operator.api.rollout_policy import RolloutPolicy
from recops_operator.api.targets import TargetName

KIND = "RecModel"
PLURAL = "recmodels"

CronSchedule = Annotated[
    str, StringConstraints(pattern=r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$")
]


class Resources(ApiModel):
    """Container resources of one serving pod."""

    cpu: Quantity = Field(default="1", description="CPU request.")
    memory: Quantity = Field(default="1Gi", description="Memory request and limit.")
    cpu_limit: Quantity | None = Field(default=None, description="CPU limit; none when empty.")
    gpu: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu per pod.")


class Autoscaling(ApiModel):
    """HorizontalPodAutoscaler settings."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            (
                "!has(self.minReplicas) || !has(self.maxReplicas) "
                "|| self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must not exceed maxReplicas",
            )
        )
    }

    enabled: bool = Field(default=False, description="Create an HPA for this target.")
    min_replicas: int = Field(default=1, ge=1, le=1000, description="HPA minimum.")
    max_replicas: int = Field(default=4, ge=1, le=1000, description="HPA maximum.")
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="Target average CPU utilization, percent."
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"autoscaling.minReplicas ({self.min_replicas}) must not exceed "
                f"maxReplicas ({self.max_replicas})"
            )
        return self


class Toleration(ApiModel):
    """A pod toleration (the subset recops sets)."""

    key: str | None = Field(default=None, description="Taint key.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect."
    )


class DeploymentTarget(ApiModel):
    """One engine to compile and serve, with its pods."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            (
                "!self.name.startsWith('gpu-') || (has(self.resources) "
                "&& has(self.resources.gpu) && self.resources.gpu >= 1)",
                "a gpu-* target runs on a GPU: set resources.gpu to at least 1",
            )
        )
    }

    name: TargetName = Field(description="Engine target.")
    replicas: int = Field(default=1, ge=0, le=1000, description="Pods per served version.")
    resources: Resources = Field(default_factory=Resources, description="Pod resources.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Autoscaling.")
    max_batch_size: int = Field(default=32, ge=1, le=4096, description="Dynamic batch size cap.")
    max_batch_delay_ms: float = Field(
        default=2.0, ge=0.0, le=1000.0, description="Longest wait to fill a batch."
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Pod node selector.")
    tolerations: list[Toleration] | None = Field(default=None, description="Pod tolerations.")

    @model_validator(mode="after")
    def _gpu_targets_need_gpus(self) -> DeploymentTarget:
        if self.name.needs_gpu and self.resources.gpu < 1:
            raise ValueError(
                f"target {self.name.value} runs on a GPU: set resources.gpu to at least 1"
            )
        return self


class DriftTrigger(ApiModel):
    """Retrain when the stable version's live results drift away from its own start, or
    its traffic away from its training data."""

    enabled: bool = Field(default=False, description="Watch drift.")
    metric: Literal["hit-rate-drop", "statistics"] = Field(
        default="hit-rate-drop",
        description="hit-rate-drop: relative drop of the stable version's online hit rate "
        "(clicks on recommended items per recommendation) from its value in the first full "
        "window after it started serving (threshold, window, minSampleSize). statistics: any "
        "drift statistic of the stable version triggered by its serving pods (see statistics).",
    )
    threshold: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Relative drop that triggers (0.2: 20% lower)."
    )
    window: Duration = Field(
        default="1h", description="Window the hit rate is measured over, e.g. 30m, 1h."
    )
    min_sample_size: int = Field(
        default=1000, ge=1, description="Recommendations a window needs before it is judged."
    )
    statistics: DriftThresholds = Field(
        default_factory=DriftThresholds,
        description="How serving pods measure drift from the training data (exported as "
        "recops_drift{statistic}, alerting as RecopsDriftTriggered): window, thresholds, and "
        "the run of breaching windows that triggers.",
    )
    cooldown: Duration = Field(
        default="6h",
        description="Least time between the start of one training and a "
        "drift-triggered one, so a retrained model that did not help is not retrained at once.",
    )


class RetrainingPolicy(ApiModel):
    """When to train again."""

    schedule: CronSchedule | None = Field(
        default=None, description="Cron schedule for periodic retraining (UTC)."
    )
    drift: DriftTrigger = Field(default_factory=DriftTrigger, description="Drift trigger.")
    min_new_interactions: int = Field(
        default=0,
        ge=0,
        description="Skip an automatic (scheduled or drift) run while fewer feedback events "
        "than this arrived since training last started (0: never skip).",
    )


class NetworkAccess(ApiModel):
    """Who may reach this RecModel's serving pods (the rendered NetworkPolicy)."""

    serving_from_namespaces: list[DnsName] | None = Field(
        default=None,
        max_length=32,
        description="Namespaces whose pods may call the serving ports (gRPC, HTTP); empty: "
        "the Gateway's namespace only (the operator's gatewayNamespace, else this one).",
    )


class RecModelSpec(ApiModel):
    """What the user wants: data, model, training, gate, targets, rollout and retraining."""

    dataset: DatasetSource = Field(description="Training data source.")
    model: ModelHyperparameters = Field(
        default_factory=ModelHyperparameters, description="Model hyperparameters."
    )
    training: TrainingResources = Field(
        default_factory=TrainingResources, description="Training resources."
    )
    gate: OfflineGate = Field(default_factory=OfflineGate, description="Offline gate.")
    targets: list[DeploymentTarget] = Field(
        min_length=1,
        max_length=16,
        description="Deployment targets to compile and serve.",
        json_schema_extra=cel_rules(
            (
                "self.all(t, self.exists_one(u, u.name == t.name))",
                "each target may appear once",
            )
        ),
    )
    rollout_policy: RolloutPolicy = Field(
        default_factory=RolloutPolicy, description="Default policy for Rollouts of this model."
    )
    retraining: RetrainingPolicy = Field(
        default_factory=RetrainingPolicy, description="Retraining policy."
    )
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="MLflow settings.")
    network: NetworkAccess = Field(
        default_factory=NetworkAccess, description="Network access to the serving pods."
    )

    @model_validator(mode="after")
    def _unique_targets(self) -> RecModelSpec:
        names = [t.name.value for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"targets: each target may appear once; repeated: {', '.join(dupes)}")
        return self


class RecModelPhase(StrEnum):
    PENDING = "Pending"
    TRAINING = "Training"
    COMPILING = "Compiling"
    SERVING = "Serving"
    ROLLING_OUT = "RollingOut"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class RecModelCondition(StrEnum):
    SPEC_VALID = "SpecValid"
    TRAINED = "Trained"
    ENGINES_READY = "EnginesReady"
    SERVING = "Serving"
    ROLLING_OUT = "RollingOut"
    DEGRADED = "Degraded"
    READY = "Ready"


class ParityReport(ApiModel):
    """How closely an engine matches the cpu-torch reference."""

    max_abs_diff: float = Field(ge=0.0, description="Largest absolute score difference.")
    top10_overlap: float = Field(ge=0.0, le=1.0, description="Mean top-10 overlap.")
    ndcg10_delta: float = Field(description="NDCG@10 change on the evaluation split.")
    users: int = Field(ge=0, description="Users compared.")


class LatencyReport(ApiModel):
    """Measured latency at one batch size."""

    batch: int = Field(ge=1, description="Batch size.")
    p50_ms: float = Field(ge=0.0, description="Median latency, milliseconds.")
    p99_ms: float = Field(ge=0.0, description="99th percentile latency, milliseconds.")
    users_per_second: float = Field(ge=0.0, description="Throughput.")


class EngineStatus(ApiModel):
    """One compiled engine of one model version."""

    target: TargetName = Field(description="Engine target.")
    artifact_uri: str = Field(description="Where the engine and its manifest are stored.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Artifact checksum.")
    precision: str | None = Field(default=None, description="fp32, fp16 or int8.")
    parity: ParityReport | None = Field(default=None, description="Parity with the reference.")
    latency: list[LatencyReport] | None = Field(default=None, description="Measured latency.")


class ModelVersionStatus(ApiModel):
    """A version of the model known to the operator."""

    version: ModelVersionStr = Field(description="Registry version.")
    training_run: DnsName | None = Field(default=None, description="TrainingRun that made it.")
    metrics: dict[str, float] | None = Field(default=None, description="Offline metrics.")
    engines: list[EngineStatus] | None = Field(default=None, description="Compiled engines.")


class Endpoint(ApiModel):
    """A served version and target."""

    version: ModelVersionStr = Field(description="Model version.")
    target: TargetName = Field(description="Engine target.")
    service: str = Field(description="Service name.")
    grpc_address: str = Field(description="host:port of the gRPC endpoint.")
    ready_replicas: int = Field(default=0, ge=0, description="Ready pods.")


class DriftStatus(ApiModel):
    """The stable version's online hit rate: at its start (the baseline) and now."""

    version: ModelVersionStr | None = Field(default=None, description="Version watched.")
    baseline_hit_rate: float | None = Field(default=None, description="Hit rate at its start.")
    hit_rate: float | None = Field(default=None, description="Hit rate in the last window.")
    drop: float | None = Field(default=None, description="Relative drop from the baseline.")
    triggered_statistics: int | None = Field(
        default=None, description="Drift statistics triggered (metric statistics)."
    )
    checked_at: str | None = Field(default=None, description="When it was last measured.")
    message: str | None = Field(default=None, description="Why nothing was measured, if so.")


class RetiringVersion(ApiModel):
    """A replaced stable version whose pods stay, at zero traffic, for a fast rollback."""

    version: ModelVersionStr = Field(description="The version replaced.")
    scale_down_at: str = Field(description="When its Deployments are deleted (RFC 3339).")


class RecModelStatus(ApiModel):
    """What the operator observed and did."""

    phase: RecModelPhase | None = Field(default=None, description="Short summary for kubectl get.")
    stable_version: ModelVersionStr | None = Field(default=None, description="Serving version.")
    candidate_version: ModelVersionStr | None = Field(
        default=None, description="Version that passed the offline gate and awaits a rollout."
    )
    weights: str | None = Field(
        default=None, description="Traffic split as text, e.g. 'v3=90 v4=10' (printer column)."
    )
    versions: list[ModelVersionStatus] | None = Field(default=None, description="Known versions.")
    retiring: list[RetiringVersion] | None = Field(
        default=None,
        description="Former stable versions kept at zero traffic until scaleDownAt "
        "(the rollout's scaleDownDelaySeconds).",
    )
    endpoints: list[Endpoint] | None = Field(default=None, description="Serving endpoints.")
    active_training_run: DnsName | None = Field(default=None, description="Running TrainingRun.")
    last_training_time: str | None = Field(default=None, description="When training last started.")
    last_skipped_schedule: str | None = Field(
        default=None, description="Scheduled time of the last run skipped for lack of new data."
    )
    drift: DriftStatus | None = Field(
        default=None, description="Drift watch of the stable version."
    )
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    conditions: list[Condition] | None = Field(default=None, description="Conditions.")


class RecModel(ApiModel):
    """A RecModel object as stored in the API."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["recops.io/v1alpha1"] = Field(default="recops.io/v1alpha1")
    kind: Literal["RecModel"] = Field(default="RecModel")
    metadata: ObjectMeta
    spec: RecModelSpec
    status: RecModelStatus | None = None
