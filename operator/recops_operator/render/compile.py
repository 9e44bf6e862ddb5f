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
    restricted_security_context,
    tolerations,
)
from recops_operator.settings import OperatorSettings

ARTIFACTS_MOUNT = "/artifacts"
# The engine's manifest is copied to the termination message, where the operator reads it
# from the pod status (the same channel Tekton uses for task results).
TERMINATION_LOG = "/dev/termination-log"
_COMPILE_SCRIPT = (
    'recops compile --model "$0" --target "$1" --out "$2" '
    f'&& cp "$2/manifest.json" {TERMINATION_LOG}'
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


def render_compile_job(
    inputs: CompileInputs, target: DeploymentTarget, settings: OperatorSettings, owner: Obj | None
) -> Obj:
    out = engine_dir(inputs.namespace, inputs.recmodel, inputs.version, target.name.value)
    resources: Obj = {
        "requests": {"cpu": target.resources.cpu, "memory": target.resources.memory},
        "limits": {"memory": target.resources.memory},
    }
    if target.resources.gpu:
        resources["requests"]["nvidia.com/gpu"] = str(target.resources.gpu)
        resources["limits"]["nvidia.com/gpu"] = str(target.resources.gpu)
    container: Obj = {
        "name": "compile",
        "image": inputs.image,
        "command": ["/bin/sh", "-c", _COMPILE_SCRIPT],
        "args": [inputs.model_uri, target.name.value, out],
        "resources": resources,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": restricted_security_context(),
    }
    pod: Obj = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
        "volumes": [
            {"name": "artifacts", "persistentVolumeClaim": {"claimName": settings.artifacts_claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
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
            "template": {"metadata": {"labels": lbls}, "spec": pod},
        },
    }
