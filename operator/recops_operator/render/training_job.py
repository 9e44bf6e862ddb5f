"""The training job of a TrainingRun: its config, a KubeRay RayJob, or a batch Job fallback."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from recops_contracts.training import (
    DatasetSource,
    MlflowSettings,
    ModelHyperparameters,
    OfflineGate,
    TrainingJobConfig,
    TrainingResources,
    TuneSpec,
)
from recops_operator.api.trainingrun import TrainingMode
from recops_operator.render.common import (
    FEEDBACK_MOUNT,
    LABEL_TRAINING_RUN,
    Obj,
    feedback_dir,
    labels,
    metadata,
    object_name,
    restricted_pod_security_context,
    restricted_security_context,
    tolerations,
)
from recops_operator.settings import OperatorSettings

CONFIG_DIR = "/etc/recops"
# The shared volume of the prepared snapshots (dataset.preparedClaim), in the Ray head and
# every worker: the head prepares once, each worker streams its shard from it. The
# archive's download cache lives there too, so that Ray Data tasks on workers read it.
PREPARED_MOUNT = "/var/lib/recops/prepared"
CONFIG_FILE = "train.json"
# Without resources.storageClaim (a batch Job: one pod), the outputs are the pod's scratch:
# the model is kept in MLflow's registry, not here.
# B108: /tmp in these pods is their own emptyDir, never a directory shared with others.
OUTPUT_DIR = "/tmp/recops/output"  # nosec B108
# resources.storageClaim, at the same path in the Ray head, every worker and the compile
# Jobs: Ray Train's workers run in other pods than the driver, and Ray Train needs
# "a cloud storage URI or a shared filesystem path accessible by all nodes"
# (RunConfig(storage_path), ray/train/v2 storage.py), so the snapshot the driver writes and
# the checkpoints the workers write must both be there.
STORAGE_MOUNT = "/var/lib/recops/runs"
SNAPSHOT = "snapshot"  # the trainer writes the snapshot to <output>/snapshot
# The root filesystem is read-only (Pod Security "restricted"): Ray's session folder
# (/tmp/ray), downloads, caches and HOME go to the /tmp emptyDir; Ray's object store and
# PyTorch's shared-memory tensors to a memory-backed /dev/shm.
SCRATCH = "/tmp"  # nosec B108: the pod's own emptyDir
SHM = "/dev/shm"  # nosec B108: the pod's own memory-backed emptyDir
HOME = f"{SCRATCH}/home"
EPHEMERAL_REQUEST = "1Gi"
# Ray's dashboard serves job submission without authentication. KubeRay needs it on the
# head's pod address: the submitter Job (K8sJobMode) runs `ray job submit` against
# http://<head service>:8265, and the KubeRay operator polls the job's status there. So it
# cannot bind 127.0.0.1; the run's NetworkPolicy (render/network.py) admits port 8265 only
# from the RecModel's training pods (the submitter carries their labels) and the KubeRay
# operator's namespace.
DASHBOARD_HOST = "0.0.0.0"  # nosec B104: fenced by the training NetworkPolicy


@dataclass(frozen=True)
class TrainingJobInputs:
    """Everything the training job depends on: the TrainingRun merged with its RecModel."""

    namespace: str
    run_name: str
    recmodel: str
    mode: TrainingMode
    dataset: DatasetSource
    model: ModelHyperparameters
    resources: TrainingResources
    gate: OfflineGate
    mlflow: MlflowSettings
    tune: TuneSpec | None = None
    resume_from: str | None = None
    active_deadline_seconds: int | None = None
    feedback_claim: str | None = None  # the operator's feedback volume, mounted read-only

    @property
    def training_run_ref(self) -> str:
        return f"{self.namespace}/{self.run_name}"


def prepared_dir(inputs: TrainingJobInputs) -> str | None:
    """Where the run's prepared snapshot lives: dataset.preparedDir, else the RecModel's
    folder on the preparedClaim volume, else nowhere (the trainer's own scratch)."""
    if inputs.dataset.prepared_dir:
        return inputs.dataset.prepared_dir
    if inputs.dataset.prepared_claim:
        return f"{PREPARED_MOUNT}/{inputs.namespace}/{inputs.recmodel}"
    return None


def run_dir(namespace: str, run_name: str, storage_claim: str | None) -> str:
    """The run's output folder: on its storage claim when it has one, else pod scratch."""
    if storage_claim:
        return f"{STORAGE_MOUNT}/{namespace}/{run_name}"
    return OUTPUT_DIR


def snapshot_dir(namespace: str, run_name: str, storage_claim: str) -> str:
    """Where the run's data snapshot lies on its storage claim (compile Jobs read it)."""
    return f"{run_dir(namespace, run_name, storage_claim)}/{SNAPSHOT}"


def train_config(inputs: TrainingJobInputs) -> dict[str, Any]:
    """The file given to ``recops train --config`` (camelCase keys, as in the CR API)."""
    dataset = inputs.dataset
    prepared = prepared_dir(inputs)
    if prepared:
        dataset = dataset.model_copy(update={"prepared_dir": prepared})
    config = TrainingJobConfig(
        dataset=dataset,
        model=inputs.model,
        resources=inputs.resources,
        gate=inputs.gate,
        mlflow=inputs.mlflow,
        tune=inputs.tune,
        training_run=inputs.training_run_ref,
        output=run_dir(inputs.namespace, inputs.run_name, inputs.resources.storage_claim),
        feedback_volume=(
            feedback_dir(inputs.namespace, inputs.recmodel) if inputs.feedback_claim else None
        ),
    )
    return config.to_wire()


def _labels(inputs: TrainingJobInputs) -> dict[str, str]:
    return labels(inputs.recmodel, "training", **{LABEL_TRAINING_RUN: inputs.run_name})


def config_map_name(run_name: str) -> str:
    return object_name(run_name, "config")


def render_config_map(inputs: TrainingJobInputs, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            config_map_name(inputs.run_name),
            inputs.namespace,
            _labels(inputs),
            owner,
        ),
        "data": {CONFIG_FILE: json.dumps(train_config(inputs), indent=2, sort_keys=True)},
    }


def entrypoint(inputs: TrainingJobInputs, job_name: str) -> list[str]:
    """The ``recops train`` (or ``recops tune``) command line the job runs."""
    command = "tune" if inputs.mode == TrainingMode.TUNE else "train"
    args = ["recops", command, "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
    if inputs.mode == TrainingMode.TRAIN:
        args += ["--run-name", job_name]
        if inputs.resume_from:
            args += ["--resume", inputs.resume_from]
    return args


def _env(inputs: TrainingJobInputs, settings: OperatorSettings) -> list[Obj]:
    env: list[Obj] = [
        {"name": "RECOPS_TRAINING_RUN", "value": inputs.training_run_ref},
        {"name": "HOME", "value": HOME},
        # The trainer reads a dataset URL in a stream and stops past this size.
        {"name": "RECOPS_MAX_DOWNLOAD_BYTES", "value": str(settings.max_download_bytes)},
    ]
    if inputs.dataset.prepared_claim:
        env.append({"name": "RECOPS_DATA_DIR", "value": f"{PREPARED_MOUNT}/cache"})
    if inputs.mlflow.tracking_uri:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": inputs.mlflow.tracking_uri})
    return env


def _env_from(inputs: TrainingJobInputs) -> list[Obj]:
    # Credentials stay in the Secret: the pod reads MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN etc.
    if inputs.mlflow.secret_ref:
        return [{"secretRef": {"name": inputs.mlflow.secret_ref}}]
    return []


def _container(
    name: str,
    inputs: TrainingJobInputs,
    image: str,
    cpus: int,
    gpus: int,
    settings: OperatorSettings,
    command: list[str] | None = None,
) -> Obj:
    res = inputs.resources
    resources: Obj = {
        "requests": {
            "cpu": str(cpus),
            "memory": res.memory,
            "ephemeral-storage": EPHEMERAL_REQUEST,
        },
        "limits": {
            "cpu": str(cpus),
            "memory": res.memory,
            "ephemeral-storage": settings.scratch_size,
        },
    }
    if gpus:
        resources["requests"]["nvidia.com/gpu"] = str(gpus)
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
    container: Obj = {
        "name": name,
        "image": image,
        "env": _env(inputs, settings),
        "resources": resources,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "scratch", "mountPath": SCRATCH},
            {"name": "shm", "mountPath": SHM},
        ],
        "securityContext": restricted_security_context(),
    }
    if inputs.feedback_claim:
        container["volumeMounts"].append(
            {"name": "feedback", "mountPath": FEEDBACK_MOUNT, "readOnly": True}
        )
    if inputs.dataset.prepared_claim:
        container["volumeMounts"].append({"name": "prepared", "mountPath": PREPARED_MOUNT})
    if inputs.resources.storage_claim:
        container["volumeMounts"].append({"name": "storage", "mountPath": STORAGE_MOUNT})
    env_from = _env_from(inputs)
    if env_from:
        container["envFrom"] = env_from
    if command:
        container["command"] = command
    return container


def _pod_spec(
    inputs: TrainingJobInputs,
    container: Obj,
    settings: OperatorSettings,
    gpu: bool,
    restart_policy: str | None = None,
) -> Obj:
    spec: Obj = {
        "containers": [container],
        "securityContext": restricted_pod_security_context(),
        # Training never calls the Kubernetes API: no token for code the tenant chose.
        "automountServiceAccountToken": False,
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(inputs.run_name)}},
            {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size}},
            # Memory-backed: what it holds counts against the pod's memory limit.
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": inputs.resources.memory}},
        ],
    }
    if inputs.feedback_claim:
        claim = {"claimName": inputs.feedback_claim, "readOnly": True}
        spec["volumes"].append({"name": "feedback", "persistentVolumeClaim": claim})
    if inputs.dataset.prepared_claim:
        prepared = {"claimName": inputs.dataset.prepared_claim}
        spec["volumes"].append({"name": "prepared", "persistentVolumeClaim": prepared})
    if inputs.resources.storage_claim:
        storage = {"claimName": inputs.resources.storage_claim}
        spec["volumes"].append({"name": "storage", "persistentVolumeClaim": storage})
    if gpu:
        spec["nodeSelector"] = dict(settings.gpu_node_selector)
        spec["tolerations"] = tolerations(settings.gpu_tolerations)
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec


def _training_object(
    api_version: str,
    kind: str,
    inputs: TrainingJobInputs,
    job_name: str,
    spec: Obj,
    owner: Obj | None,
) -> Obj:
    """A training job of either kind around its ``spec``, with the run's deadline."""
    if inputs.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = inputs.active_deadline_seconds
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata(job_name, inputs.namespace, _labels(inputs), owner),
        "spec": spec,
    }


def render_ray_job(
    inputs: TrainingJobInputs,
    job_name: str,
    ray_job_id: str,
    settings: OperatorSettings,
    owner: Obj | None,
) -> Obj:
    """A KubeRay RayJob: a head that runs the entrypoint and a group of training workers."""
    res = inputs.resources
    image = res.image or settings.image
    head_cpus = max(1, res.cpus_per_worker // 2)
    head = _container("ray-head", inputs, image, head_cpus, 0, settings)
    worker = _container(
        "ray-worker", inputs, image, res.cpus_per_worker, res.gpus_per_worker, settings
    )
    pod_labels = {"labels": _labels(inputs)}
    spec: Obj = {
        "entrypoint": shlex.join(entrypoint(inputs, job_name)),
        "jobId": ray_job_id,
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": settings.ray_job_ttl_seconds,
        "rayClusterSpec": {
            "rayVersion": settings.ray_version,
            "headGroupSpec": {
                # The head only drives: training workers are scheduled on the worker group.
                "rayStartParams": {"num-cpus": "0", "dashboard-host": DASHBOARD_HOST},
                "template": {
                    "metadata": pod_labels,
                    "spec": _pod_spec(inputs, head, settings, gpu=False),
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": "train",
                    "replicas": res.workers,
                    "minReplicas": res.workers,
                    "maxReplicas": res.workers,
                    "rayStartParams": {},
                    "template": {
                        "metadata": pod_labels,
                        "spec": _pod_spec(inputs, worker, settings, gpu=res.gpus_per_worker > 0),
                    },
                }
            ],
        },
        "submitterPodTemplate": _submitter_template(inputs, image, settings),
    }
    return _training_object("ray.io/v1", "RayJob", inputs, job_name, spec, owner)


def _submitter_template(inputs: TrainingJobInputs, image: str, settings: OperatorSettings) -> Obj:
    """The pod of KubeRay's submitter Job (K8sJobMode), ours rather than KubeRay's default so
    that it passes Pod Security "restricted" and carries the run's labels (the training
    NetworkPolicy admits it to the dashboard). KubeRay supplies its command (`ray job
    submit` of the entrypoint) and RAY_DASHBOARD_ADDRESS to the first container."""
    container: Obj = {
        "name": "ray-job-submitter",
        "image": image,
        "env": [{"name": "HOME", "value": HOME}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
            "limits": {"memory": "512Mi", "ephemeral-storage": "256Mi"},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
        "securityContext": restricted_security_context(),
    }
    return {
        "metadata": {"labels": _labels(inputs)},
        "spec": {
            "restartPolicy": "Never",
            "containers": [container],
            "securityContext": restricted_pod_security_context(),
            "automountServiceAccountToken": False,
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "256Mi"}}],
        },
    }


def render_fallback_job(
    inputs: TrainingJobInputs, job_name: str, settings: OperatorSettings, owner: Obj | None
) -> Obj:
    """Without KubeRay: one pod with all the workers' share, training in-process (one worker)
    or on a private local Ray (several; `recops train` starts it when no RAY_ADDRESS is set).

    Retries are counted by the TrainingRun (one Job per attempt), so the Job itself never retries.
    """
    res = inputs.resources
    cpus = res.cpus_per_worker * res.workers
    gpus = res.gpus_per_worker * res.workers
    container = _container(
        "train",
        inputs,
        res.image or settings.image,
        cpus,
        gpus,
        settings,
        command=entrypoint(inputs, job_name),
    )
    spec: Obj = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": settings.ray_job_ttl_seconds,
        "template": {
            "metadata": {"labels": _labels(inputs)},
            "spec": _pod_spec(inputs, container, settings, gpu=gpus > 0, restart_policy="Never"),
        },
    }
    return _training_object("batch/v1", "Job", inputs, job_name, spec, owner)
