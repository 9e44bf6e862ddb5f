"""A TrainingRun as the operator renders it: the object a RecModel starts, and the inputs
its jobs are rendered from (the run's overrides on top of its RecModel's spec)."""

from __future__ import annotations

from recops_contracts.training import (
    SCALE_FORMATS,
    DataPipeline,
    DatasetSource,
    MlflowSettings,
    TrainingResources,
)
from recops_operator.api.base import API_VERSION
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import KIND, TrainingRunSpec
from recops_operator.render.common import Obj, labels, metadata
from recops_operator.render.guardrails import check_tenant_spec
from recops_operator.render.training_job import TrainingJobInputs
from recops_operator.settings import OperatorSettings
from recops_operator.timeutil import parse_duration
from recops_operator.validation import InvalidSpecError, check_dns_1035, overlay


def render_training_run(owner: Obj, name: str, spec: TrainingRunSpec) -> Obj:
    """The TrainingRun ``name`` a RecModel (``owner``) starts."""
    meta = owner["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(name, meta["namespace"], labels(meta["name"], "training"), owner),
        "spec": spec.to_wire(),
    }


def job_inputs(
    settings: OperatorSettings,
    namespace: str,
    name: str,
    spec: TrainingRunSpec,
    rm: RecModelSpec,
) -> TrainingJobInputs:
    """The run's overrides on top of its RecModel's spec, with the operator's defaults.

    Raises InvalidSpecError naming the field when an override does not fit the RecModel's,
    or when the merged spec is outside the operator's tenant guardrails.
    """
    check_dns_1035("TrainingRun", name)
    mlflow = MlflowSettings(
        tracking_uri=rm.mlflow.tracking_uri or settings.mlflow_tracking_uri,
        secret_ref=rm.mlflow.secret_ref or settings.mlflow_secret,
        registered_model_name=rm.mlflow.registered_model_name or spec.rec_model,
    )
    dataset = overlay(rm.dataset, spec.dataset, "dataset")
    resources = overlay(rm.training, spec.resources, "resources")
    _check_shared_data(dataset, resources)
    check_tenant_spec(dataset, resources, rm.mlflow, settings)
    return TrainingJobInputs(
        namespace=namespace,
        run_name=name,
        recmodel=spec.rec_model,
        mode=spec.mode,
        dataset=dataset,
        model=overlay(rm.model, spec.model, "model"),
        resources=resources,
        gate=rm.gate,
        mlflow=mlflow,
        tune=spec.tune,
        resume_from=spec.resume_from,
        active_deadline_seconds=int(parse_duration(spec.active_deadline))
        if spec.active_deadline
        else None,
        feedback_claim=settings.feedback_claim,
    )


def _check_shared_data(dataset: DatasetSource, resources: TrainingResources) -> None:
    """A large data set trained by several Ray workers needs storage they all read: each
    worker streams its shard of the prepared snapshot from it."""
    shared = dataset.prepared_claim or dataset.prepared_dir
    streaming = dataset.format in SCALE_FORMATS and dataset.pipeline != DataPipeline.IN_MEMORY
    if streaming and resources.workers > 1 and not shared:
        raise InvalidSpecError(
            f"spec.dataset.preparedClaim: format {dataset.format.value} with "
            f"{resources.workers} Ray workers streams a prepared snapshot that every worker "
            "reads; name a ReadWriteMany PersistentVolumeClaim (or set preparedDir to "
            "storage every worker mounts), or set pipeline: in-memory"
        )


def require_shared_storage(inputs: TrainingJobInputs) -> None:
    """A RayJob's head starts with no CPUs, so every Ray Train worker (and Tune trial) runs
    in another pod than the driver: the snapshot the driver writes and the checkpoints the
    workers write need storage every pod mounts. Raised for every format and mode."""
    if not inputs.resources.storage_claim:
        raise InvalidSpecError(
            "spec.training.storageClaim (or the TrainingRun's spec.resources.storageClaim): "
            "training on KubeRay runs the Ray Train workers in other pods than the driver, "
            "so the run's snapshot and checkpoints need a ReadWriteMany "
            "PersistentVolumeClaim mounted in every pod; name one"
        )
