"""Compile Jobs: one per deployment target, turning a registered model into an engine."""

from __future__ import annotations

from dataclasses import dataclass

from recops_operator.api.recmodel import DeploymentTarget
from recops_operator.render.common import (
    LABEL_TARGET,
    LABEL_TRAINING_RUN,
    LABEL_VERSION,
    Obj,
    labels,
    metadata,
    object_name,
    restricted_pod_security_context,
    restricted_security_context,
    tolerations,
)
from recops_operator.render.training_job import STORAGE_MOUNT, TrainingJobInputs, snapshot_dir
from recops_operator.settings import OperatorSettings

ARTIFACTS_MOUNT = "/artifacts"
# The engine's manifest is copied to the termination message, where the operator reads it
# from the pod status (the same channel Tekton uses for task results).
TERMINATION_LOG = "/dev/termination-log"
# After the model, target and folder, "$@" carries --data when the run's snapshot is on its
# storage claim. --overwrite: a retried pod finds the folder its failed one left; only this
# Job writes it.
_COMPILE_SCRIPT = (
    't="$1" o="$2"; shift 2; '
    'recops compile --model "$0" --target "$t" --out "$o" --overwrite "$@" '
    f'&& cp "$o/manifest.json" {TERMINATION_LOG}'
)
# The root filesystem is read-only: MLflow's download, pip-style and data caches go to the
# pod's writable emptyDir, which also holds the scratch folder of the export.
SCRATCH = "/tmp"  # nosec B108: the pod's own emptyDir
CACHE_ENV = (
    ("HOME", f"{SCRATCH}/home"),
    ("XDG_CACHE_HOME", f"{SCRATCH}/cache"),
    ("RECOPS_DATA_DIR", f"{SCRATCH}/cache/recops/data"),
)


def engine_dir(namespace: str, recmodel: str, version: str, target: str) -> str:
    """Where the engine of one version and target lives on the artifacts volume."""
    return f"{ARTIFACTS_MOUNT}/{namespace}/{recmodel}/{version}/{target}"


def compile_job_name(run_name: str, target: str) -> str:
    return object_name(run_name, "compile", target)


@dataclass(frozen=True)
class CompileInputs:
    namespace: str
    run_name: str
    recmodel: str
    model_uri: str
    version: str
    backoff_limit: int
    image: str
    # The training run's MLflow, so that models:/ URIs resolve against it (the trainer's
    # MLFLOW_TRACKING_URI and Secret, as in the training pods).
    tracking_uri: str | None = None
    mlflow_secret: str | None = None
    # The run's storage claim and the snapshot on it: compile reads the very snapshot the
    # model was trained on (feedback included), so its hash matches without a download.
    storage_claim: str | None = None
    snapshot_dir: str | None = None


def gpu_placement(
    target: DeploymentTarget, settings: OperatorSettings
) -> tuple[dict[str, str] | None, list[Obj] | None]:
    """Node selector and tolerations: the target's own, plus the GPU defaults for GPU targets."""
    selector = dict(target.node_selector or {})
    tols = tolerations(target.tolerations or [])
    if target.name.needs_gpu:
        selector = {**settings.gpu_node_selector, **selector}
        tols = tolerations(settings.gpu_tolerations) + tols
    return (selector or None), (tols or None)


def compile_inputs(
    job: TrainingJobInputs,
    registered_model: str,
    version: str,
    backoff_limit: int,
    settings: OperatorSettings,
) -> CompileInputs:
    """The compile Jobs of a run's registered version, with the run's MLflow and storage."""
    claim = job.resources.storage_claim
    return CompileInputs(
        namespace=job.namespace,
        run_name=job.run_name,
        recmodel=job.recmodel,
        model_uri=f"models:/{registered_model}/{version}",
        version=version,
        backoff_limit=backoff_limit,
        image=job.resources.image or settings.image,
        tracking_uri=job.mlflow.tracking_uri,
        mlflow_secret=job.mlflow.secret_ref,
        storage_claim=claim,
        snapshot_dir=snapshot_dir(job.namespace, job.run_name, claim) if claim else None,
    )


def _env(inputs: CompileInputs) -> list[Obj]:
    env = [{"name": k, "value": v} for k, v in CACHE_ENV]
    if inputs.tracking_uri:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": inputs.tracking_uri})
    return env


def render_compile_job(
    inputs: CompileInputs, target: DeploymentTarget, settings: OperatorSettings, owner: Obj | None
) -> Obj:
    out = engine_dir(inputs.namespace, inputs.recmodel, inputs.version, target.name.value)
    # Exporting and building hold the model, its data and the engine at once: a memory
    # request of their own, not the serving target's.
    memory = settings.compile_memory
    resources: Obj = {
        "requests": {"cpu": target.resources.cpu, "memory": memory, "ephemeral-storage": "1Gi"},
        "limits": {"memory": memory, "ephemeral-storage": settings.scratch_size},
    }
    if target.resources.gpu:
        resources["requests"]["nvidia.com/gpu"] = str(target.resources.gpu)
        resources["limits"]["nvidia.com/gpu"] = str(target.resources.gpu)
    args = [inputs.model_uri, target.name.value, out]
    mounts: list[Obj] = [
        {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT},
        {"name": "tmp", "mountPath": SCRATCH},
    ]
    volumes: list[Obj] = [
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": settings.artifacts_claim}},
        {"name": "tmp", "emptyDir": {"sizeLimit": settings.scratch_size}},
    ]
    if inputs.storage_claim and inputs.snapshot_dir:
        args += ["--data", inputs.snapshot_dir]
        mounts.append({"name": "storage", "mountPath": STORAGE_MOUNT, "readOnly": True})
        claim = {"claimName": inputs.storage_claim, "readOnly": True}
        volumes.append({"name": "storage", "persistentVolumeClaim": claim})
    container: Obj = {
        "name": "compile",
        "image": inputs.image,
        "command": ["/bin/sh", "-c", _COMPILE_SCRIPT],
        "args": args,
        "env": _env(inputs),
        "resources": resources,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
        "securityContext": restricted_security_context(),
    }
    if inputs.mlflow_secret:
        # Credentials stay in the Secret, as in the training pods.
        container["envFrom"] = [{"secretRef": {"name": inputs.mlflow_secret}}]
    pod: Obj = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": restricted_pod_security_context(),
        # A compile reads MLflow and writes the volume; it never calls the Kubernetes API.
        "automountServiceAccountToken": False,
        "volumes": volumes,
    }
    selector, tols = gpu_placement(target, settings)
    if selector:
        pod["nodeSelector"] = selector
    if tols:
        pod["tolerations"] = tols
    lbls = labels(
        inputs.recmodel,
        "compile",
        **{
            LABEL_TRAINING_RUN: inputs.run_name,
            LABEL_VERSION: inputs.version,
            LABEL_TARGET: target.name.value,
        },
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(
            compile_job_name(inputs.run_name, target.name.value), inputs.namespace, lbls, owner
        ),
        "spec": {
            "backoffLimit": inputs.backoff_limit,
            # A compile that hangs (a download, a toolkit) must fail the run, not hold it.
            "activeDeadlineSeconds": settings.compile_deadline_seconds,
            "template": {"metadata": {"labels": lbls}, "spec": pod},
        },
    }
