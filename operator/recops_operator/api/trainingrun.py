"""TrainingRun: one training (or tuning) job of a RecModel."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from recops_contracts.tracking import Verdict
from recops_contracts.training import (
    DatasetSource,
    EvaluationProtocol,
    ModelHyperparameters,
    TrainingResources,
    TuneSpec,
)
from recops_contracts.wire import DnsName
from recops_operator.api.base import ApiModel, Duration, ModelVersionStr, ObjectMeta, cel_rules
from recops_operator.api.conditions import Condition
from recops_operator.api.recmodel import EngineStatus

KIND = "TrainingRun"
PLURAL = "trainingruns"


class TrainingMode(StrEnum):
    TRAIN = "train"
    TUNE = "tune"


class TrainingRunSpec(ApiModel):
    """One training or tuning job; unset fields come from the RecModel."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            (
                "!has(self.mode) || self.mode != 'tune' || has(self.tune)",
                "mode tune needs tune.searchSpace",
            )
        )
    }

    rec_model: DnsName = Field(description="The RecModel this run trains.")
    mode: TrainingMode = Field(default=TrainingMode.TRAIN, description="train or tune.")
    dataset: DatasetSource | None = Field(
        default=None,
        description="Data source fields to change (with its format); the others come from "
        "the RecModel.",
    )
    model: ModelHyperparameters | None = Field(
        default=None,
        description="Hyperparameters to change; the others come from the RecModel.",
    )
    resources: TrainingResources | None = Field(
        default=None,
        description="Training resources to change; the others come from the RecModel's training.",
    )
    tune: TuneSpec | None = Field(default=None, description="Search space, for mode tune.")
    backoff_limit: int = Field(default=2, ge=0, le=10, description="Retries of a failed job.")
    active_deadline: Duration | None = Field(default=None, description="Fail after this long.")
    resume_from: str | None = Field(default=None, description="Checkpoint or run to resume from.")

    @model_validator(mode="after")
    def _tune_needs_space(self) -> TrainingRunSpec:
        if self.mode == TrainingMode.TUNE and self.tune is None:
            raise ValueError("tune: mode tune needs a tune.searchSpace")
        return self


class TrainingPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    EVALUATING = "Evaluating"
    COMPILING = "Compiling"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrainingRunCondition(StrEnum):
    SPEC_VALID = "SpecValid"
    JOB_SUBMITTED = "JobSubmitted"
    TRAINED = "Trained"
    GATE_PASSED = "GatePassed"
    ENGINES_READY = "EnginesReady"
    READY = "Ready"


class GateVerdict(ApiModel):
    """The offline gate's decision on this run's model."""

    verdict: Verdict = Field(description="candidate or rejected.")
    reason: str = Field(description="Why.")
    metric: str | None = Field(default=None, description="Gating metric.")
    value: float | None = Field(default=None, description="This model's value.")
    champion_value: float | None = Field(default=None, description="The champion's value.")


class TrainingProgress(ApiModel):
    """How far a running training is, from the metrics it logs to MLflow every epoch."""

    epoch: int = Field(ge=1, description="Epochs finished so far.")
    epochs: int = Field(ge=1, description="Epochs the run trains at most (it may stop early).")
    validation: dict[str, float] | None = Field(
        default=None, description="The latest validation metrics (val_*)."
    )
    reported_at: str | None = Field(default=None, description="When the latest epoch ended.")
    estimated_finish: str | None = Field(
        default=None, description="When the last epoch ends at the pace so far."
    )


class TrainingRunStatus(ApiModel):
    """Progress of the run."""

    phase: TrainingPhase | None = Field(default=None, description="State machine phase.")
    reason: str | None = Field(default=None, description="CamelCase reason of the phase.")
    message: str | None = Field(default=None, description="Details of the phase.")
    job_kind: Literal["RayJob", "Job"] | None = Field(
        default=None, description="RayJob, or a batch Job when KubeRay is absent."
    )
    job_name: str | None = Field(default=None, description="Name of the RayJob or Job.")
    ray_job_id: str | None = Field(default=None, description="Ray job submission id.")
    attempts: int = Field(default=0, ge=0, description="Job submissions so far.")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run id.")
    registered_model: str | None = Field(default=None, description="Registered model name.")
    model_version: ModelVersionStr | None = Field(default=None, description="Registered version.")
    metrics: dict[str, float] | None = Field(default=None, description="Offline test metrics.")
    protocol: EvaluationProtocol | None = Field(default=None, description="Evaluation protocol.")
    dataset_hash: str | None = Field(default=None, description="Dataset snapshot hash.")
    parent_dataset_hash: str | None = Field(
        default=None,
        description="The data set the serving feedback was added to, when it was (lineage).",
    )
    feedback_interactions: int | None = Field(
        default=None, ge=0, description="Interactions the serving feedback added."
    )
    gate: GateVerdict | None = Field(default=None, description="Offline gate verdict.")
    engines: list[EngineStatus] | None = Field(default=None, description="Compiled engines.")
    progress: TrainingProgress | None = Field(
        default=None, description="Epochs done, the latest validation metrics, when it ends."
    )
    start_time: str | None = Field(default=None, description="When the job started.")
    completion_time: str | None = Field(default=None, description="When the run ended.")
    observed_generation: int | None = Field(default=None, description="Generation acted on.")
    conditions: list[Condition] | None = Field(default=None, description="Conditions.")


class TrainingRun(ApiModel):
    """A TrainingRun object as stored in the API."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["recops.io/v1alpha1"] = Field(default="recops.io/v1alpha1")
    kind: Literal["TrainingRun"] = Field(default="TrainingRun")
    metadata: ObjectMeta
    spec: TrainingRunSpec
    status: TrainingRunStatus | None = None
