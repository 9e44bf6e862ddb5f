"""Operator settings, read from RECOPS_OPERATOR_* environment variables (the chart sets them).

The Prometheus address and the query timeout keep their RECOPS_ROLLOUT_* names from when
the Rollout controller read settings of its own, so deployments that set them keep working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recops_operator.api.recmodel import Toleration

PREFIX = "RECOPS_OPERATOR_"
ROLLOUT_PREFIX = "RECOPS_ROLLOUT_"


def env_name(loc: Sequence[str | int]) -> str:
    """The environment variable of a settings error's location (``loc`` of pydantic)."""
    name = "_".join(str(p) for p in loc).upper()
    return name if name.startswith(ROLLOUT_PREFIX) else f"{PREFIX}{name}"


def server_origin(uri: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``uri`` (the default port made explicit): what decides
    whether two tracking URIs name the same server (mlflow_allowed_tracking_uris)."""
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class OperatorSettings(BaseSettings):
    """How the operator runs and the defaults it fills into what it renders."""

    # By name too: code sets the fields whose variables are RECOPS_ROLLOUT_* aliases by
    # their names, like every other field.
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", validate_by_name=True)

    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to watch; empty watches the whole cluster.",
    )
    standalone: bool = Field(
        default=False,
        description="Run without peering. Off in production, where two replicas form a highly "
        "available pair through Kopf peering and only the higher priority one acts.",
    )
    peering_name: str = Field(default="recops", description="Kopf peering object name.")
    priority: int | None = Field(
        default=None,
        description="Peering priority of this replica; empty: a random one chosen at start-up "
        "(see runner.peering_priority), so that replicas never share one.",
    )
    liveness_endpoint: str | None = Field(
        default="http://0.0.0.0:8081/healthz",
        description="Liveness probe URL; empty disables it. All interfaces: the kubelet probes "
        "the pod's address; it answers health only, and the chart's NetworkPolicy admits no "
        "other port of the operator.",
    )
    log_format: Literal["json", "plain", "full"] = Field(
        default="json", description="Log format: json for log collectors, plain/full for humans."
    )
    debug: bool = Field(default=False, description="Debug logging.")
    resync_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between re-comparisons of desired and observed state.",
    )

    image: str = Field(
        default="ghcr.io/recops/recops-trainer:0.1.0",
        description="Image of the trainer and compile Jobs (a TrainingRun may override it).",
    )
    runtime_image: str = Field(
        default="ghcr.io/recops/recops-runtime:0.1.0", description="Image of the serving pods."
    )
    gpu_runtime_image: str = Field(
        default="ghcr.io/recops/recops-runtime-gpu:0.1.0",
        description="Serving image for GPU targets.",
    )
    ray_version: str = Field(default="2.60.0", description="Ray version the RayJob declares.")
    ray_job_ttl_seconds: int = Field(
        default=600, ge=0, description="Seconds a finished RayJob's cluster is kept for debugging."
    )
    mlflow_tracking_uri: str = Field(
        default="http://mlflow.recops-system.svc:5000",
        description="MLflow tracking URI when a RecModel does not name one.",
    )
    mlflow_secret: str | None = Field(
        default=None, description="Secret with MLFLOW_* variables when a RecModel names none."
    )
    mlflow_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long after the job finished a TrainingRun waits for its MLflow run.",
    )
    artifacts_claim: str = Field(
        default="recops-artifacts",
        description="PersistentVolumeClaim of the engines (compile Jobs write, serving pods read).",
    )
    compile_memory: str = Field(
        default="4Gi",
        description="Memory request and limit of compile Jobs (export and build hold the "
        "model, its data and the engine at once).",
    )
    compile_deadline_seconds: int = Field(
        default=3600, gt=0, description="activeDeadlineSeconds of compile Jobs."
    )
    feedback_claim: str | None = Field(
        default=None,
        description="ReadWriteMany PersistentVolumeClaim (in each RecModel's namespace) on "
        "which serving pods log feedback and training pods read it; none: no feedback volume.",
    )
    prometheus_url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        validation_alias=f"{ROLLOUT_PREFIX}PROMETHEUS_URL",
        description="Prometheus of rollout analysis (metrics that name no address of their "
        "own) and of automatic retraining's live signals.",
    )
    query_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias=f"{ROLLOUT_PREFIX}QUERY_TIMEOUT_SECONDS",
        description="Timeout of one Prometheus or MLflow call.",
    )
    gateway_name: str = Field(
        default="recops-gateway", description="Gateway the GRPCRoutes attach to."
    )
    gateway_namespace: str | None = Field(
        default=None, description="Namespace of the Gateway; the RecModel's when empty."
    )
    service_monitors: bool = Field(
        default=True, description="Create ServiceMonitors (needs the Prometheus operator's CRDs)."
    )
    # Security settings (docs/security.md: the threat model and how to tighten them).
    mlflow_allowed_tracking_uris: list[str] = Field(
        default_factory=list,
        description="Tracking servers a RecModel may name (spec.mlflow.trackingUri), compared "
        "by scheme, host and port; empty allows any. The operator's own MLflow credentials "
        "go only to mlflowTrackingUri whatever this says.",
    )
    allowed_image_prefixes: list[str] = Field(
        default_factory=lambda: ["ghcr.io/recops/"],
        description="Prefixes a training image (spec.training.image, a TrainingRun's "
        "spec.resources.image) must start with; the operator's own images always pass. "
        "Empty allows any image.",
    )
    allowed_dataset_schemes: list[str] = Field(
        default_factory=lambda: ["https", "file"],
        description="URI schemes dataset.uri may use; paths without a scheme (the pod's own "
        "volumes) always pass.",
    )
    allowed_dataset_hosts: list[str] = Field(
        default_factory=lambda: ["files.grouplens.org"],
        description="Hosts an http(s) dataset.uri may name ('*' allows any; "
        "'.example.com' any subdomain of it).",
    )
    max_download_bytes: int = Field(
        default=4 << 30,
        gt=0,
        description="Largest dataset download a training pod accepts (read in a stream), in bytes.",
    )
    scratch_size: str = Field(
        default="20Gi",
        description="sizeLimit of the /tmp emptyDir of training and compile pods (downloads, "
        "Ray's session folder, caches) and their ephemeral-storage limit.",
    )
    network_policies: bool = Field(
        default=True,
        description="Render NetworkPolicies for the serving and training pods of each RecModel.",
    )
    operator_namespace: str = Field(
        default="recops-system",
        description="Namespace of the operator's pods (they read the serving pods' metrics).",
    )
    monitoring_namespace: str = Field(
        default="monitoring",
        description="Namespace of Prometheus: the only one besides the operator's that may "
        "scrape serving pods' metrics.",
    )
    kuberay_namespace: str = Field(
        default="kuberay-system",
        description="Namespace of the KubeRay operator, which polls a RayJob's dashboard "
        "(port 8265) for the job's status.",
    )
    gpu_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"},
        description="Node selector added to pods of GPU targets and GPU training workers.",
    )
    gpu_tolerations: list[Toleration] = Field(
        default_factory=lambda: [
            Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
        ],
        description="Tolerations added to pods of GPU targets and GPU training workers.",
    )
