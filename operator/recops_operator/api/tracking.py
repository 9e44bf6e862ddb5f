"""What the trainer writes to MLflow and the operator reads back: tag and metric names.

The trainer tags its run with ``recops.training_run = <namespace>/<name>`` and writes the
offline metrics and the gate verdict; ``mlflow_rest`` finds that run over MLflow's REST
API and the TrainingRun decisions read it as a :class:`TrainingResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TAG_TRAINING_RUN = "recops.training_run"
TAG_DATASET_HASH = "recops.dataset_hash"
TAG_PROTOCOL = "recops.protocol"
TAG_REGISTERED_MODEL = "recops.registered_model"
TAG_MODEL_VERSION = "recops.model_version"
TAG_GATE = "recops.gate"
TAG_GATE_REASON = "recops.gate_reason"
METRICS = (
    "test_sampled_ndcg_at_10",
    "test_sampled_hr_at_10",
    "test_full_ndcg_at_10",
    "test_full_hr_at_10",
    "val_ndcg_at_10",
)


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training wrote to MLflow."""

    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in {"FINISHED", "FAILED", "KILLED"}

    @property
    def gate(self) -> str | None:
        return self.tags.get(TAG_GATE)

    @property
    def complete(self) -> bool:
        """The run ended and the gate has decided (the last thing the trainer writes)."""
        return self.finished and self.gate is not None
