"""MLflow tracking: parameters, per-epoch metrics, test metrics, artifacts and the model.

The tracking URI is ``MLFLOW_TRACKING_URI``, else the config's ``mlflow.trackingUri``, else
the embedded default: a SQLite file ``mlflow.db`` and an artifact folder ``mlruns`` in the
working directory. Metric and tag names are a contract with the operator (which reads
them over MLflow's REST API), defined once in ``recops_contracts.tracking``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from recops_contracts.tracking import TAG_CODE_VERSION, TAG_TRAINING_RUN, metric_key
from recops_contracts.training import EvaluationProtocol, MlflowSettings
from recops_trainer.config import TrainConfig
from recops_trainer.evaluation.evaluator import flat_metrics
from recops_trainer.model.network import SSEPT, ModelShape
from recops_trainer.training.state import EpochResult, TrainState

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlruns"
DEFAULT_MODEL_NAME = "recops"


def tracking_uri(settings: MlflowSettings) -> str:
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or settings.tracking_uri
        or f"sqlite:///{Path(DEFAULT_DB).resolve()}"
    )


def portable_uri(uri: str) -> str:
    """``uri`` as another process with another working directory must write it (Ray
    workers run in their trial folder): relative SQLite and file-store paths made absolute."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    if "://" not in uri and not uri.startswith(("file:", "databricks")):
        return str(Path(uri).resolve())
    return uri


def registered_name(config: TrainConfig) -> str:
    """The operator fills ``mlflow.registeredModelName`` with the RecModel's name."""
    return config.mlflow.registered_model_name or DEFAULT_MODEL_NAME


def code_version() -> dict[str, str]:
    tags: dict[str, str] = {}
    with contextlib.suppress(PackageNotFoundError):
        tags[TAG_CODE_VERSION] = version("recops")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def flat_params(config: TrainConfig) -> dict[str, str]:
    params: dict[str, str] = {}
    for section in ("model", "dataset", "resources"):
        values = getattr(config, section).model_dump(mode="json", by_alias=True)
        for key, value in values.items():
            if value is not None:
                params[f"{section}.{key}"] = str(value)
    return params


def validation_metrics(validation: dict[str, dict[str, Any]]) -> dict[str, float]:
    """An epoch's validation as MLflow metrics (``val_ndcg_at_10``, ``val_full_hr_at_10``...)."""
    return {
        metric_key("val", protocol, metric): float(validation[protocol.value][metric])
        for protocol in EvaluationProtocol
        for metric in ("ndcg@10", "hr@10")
    }


def epoch_metrics(result: EpochResult) -> dict[str, float]:
    out = {"loss": result.loss, "epoch_seconds": result.seconds}
    # Where the epoch's time went: sample_seconds, forward_seconds, backward_seconds, ...
    out |= {f"{phase}_seconds": seconds for phase, seconds in result.phases.items()}
    if result.validation:
        out |= validation_metrics(result.validation)
    return out


def model_signature(shape: ModelShape) -> Any:
    """The network's inputs and output as MLflow tensor specs, written from its shape
    (cheaper than ``infer_signature``, which would run the model on an example)."""
    import numpy as np
    from mlflow.models.signature import ModelSignature
    from mlflow.types import Schema, TensorSpec

    ids = np.dtype("int64")
    return ModelSignature(
        inputs=Schema(
            [
                TensorSpec(ids, (-1,), "user_ids"),
                TensorSpec(ids, (-1, shape.maxlen), "history"),
            ]
        ),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, shape.num_items + 1), "scores")]),
    )


class EpochMetricsLogger:
    """Per-epoch hook that logs ``epoch_metrics`` to an existing MLflow run as training goes.

    Ray Train's rank-0 worker runs it, so a long distributed run shows its curves live.
    A tracking server the worker cannot reach costs a warning, never the training: the
    driver logs what is missing once training ends (:func:`logged_steps`).
    """

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id
        self._client: Any = None
        self._failed = False

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if self._failed:
            return
        try:
            import time

            from mlflow import MlflowClient
            from mlflow.entities import Metric

            if self._client is None:
                self._client = MlflowClient(self.uri)
            now = int(time.time() * 1000)
            batch = [
                Metric(k, float(v), now, result.epoch) for k, v in epoch_metrics(result).items()
            ]
            self._client.log_batch(self.run_id, metrics=batch)
        except Exception as exc:  # the run's curves are not worth the training
            self._failed = True
            log.warning(
                "MLflow at %s unreachable from the worker (%s); epochs are logged "
                "after training instead",
                self.uri,
                exc,
            )


def logged_steps(client: Any, run_id: str, key: str = "loss") -> set[int]:
    """The epochs whose metrics are already in the run (logged live by a worker)."""
    return {m.step for m in client.get_metric_history(run_id, key)}


class Tracker:
    """One MLflow run, driven through the client (no global active run is needed)."""

    def __init__(self, config: TrainConfig, experiment: str | None = None) -> None:
        import mlflow
        from mlflow import MlflowClient

        self.config = config
        self.uri = tracking_uri(config.mlflow)
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        name = experiment or registered_name(config)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = None
            if self.uri.startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI"):
                location = Path(DEFAULT_ARTIFACTS).resolve().as_uri()
            self.experiment_id = self.client.create_experiment(name, artifact_location=location)
        self.run_id = ""

    def start(
        self, run_name: str | None, tags: dict[str, str], parent_run_id: str | None = None
    ) -> str:
        all_tags = {**code_version(), **tags}
        if self.config.training_run:
            all_tags[TAG_TRAINING_RUN] = self.config.training_run
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = run.info.run_id
        return self.run_id

    def attach(self, run_id: str) -> None:
        self.run_id = run_id

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, v) for k, v in params.items() if k not in existing]
        for start in range(0, len(fresh), 100):
            self.client.log_batch(self.run_id, params=fresh[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        """Per-epoch hook for the training loop."""
        self.log_metrics(epoch_metrics(result), step=result.epoch)

    def log_test(self, test: dict[str, dict[str, Any]]) -> dict[str, float]:
        flat = flat_metrics(test, "test")
        self.log_metrics(flat)
        return flat

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_artifacts(self, model_dir: Path, history: list[dict[str, Any]]) -> None:
        self.client.log_artifacts(self.run_id, str(model_dir), artifact_path="recops_model")
        with tempfile.TemporaryDirectory() as tmp:
            curve = Path(tmp) / "training_curve.png"
            plot_training_curve(history, curve)
            self.client.log_artifact(self.run_id, str(curve))

    def log_model(self, model: SSEPT) -> str:
        """Log the network with MLflow's PyTorch flavour; returns the model URI."""
        import mlflow
        import mlflow.pytorch
        import torch

        with mlflow.start_run(run_id=self.run_id, experiment_id=self.experiment_id):
            # Pickle keeps the dynamic batch of the eager module; naming the requirement
            # spares MLflow a slow inference of the environment.
            info = mlflow.pytorch.log_model(
                model,
                name="model",
                serialization_format="pickle",
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                signature=model_signature(model.shape),
            )
        return str(info.model_uri)

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id:
            self.client.set_terminated(self.run_id, status=status)


def plot_training_curve(history: list[dict[str, Any]], path: Path) -> Path:
    """Loss per epoch and validation NDCG@10 (both protocols) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [h["loss"] for h in history])
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    validated = [h for h in history if h.get("val")]
    for protocol in ("sampled", "full"):
        val_ax.plot(
            [h["epoch"] for h in validated],
            [h["val"][protocol]["ndcg@10"] for h in validated],
            marker="o",
            label=f"{protocol} NDCG@10",
        )
    val_ax.set_xlabel("epoch")
    val_ax.set_ylabel("validation")
    val_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
