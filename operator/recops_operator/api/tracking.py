"""A training run as the operator reads it back from MLflow.

The names are the shared contract (``recops_contracts.tracking``, re-exported here); the
MLflow client finds the run and the TrainingRun decisions read it as a
:class:`TrainingResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recops_contracts.tracking import (
    METRICS as METRICS,
    TAG_DATASET_HASH as TAG_DATASET_HASH,
    TAG_FEEDBACK_INTERACTIONS as TAG_FEEDBACK_INTERACTIONS,
    TAG_GATE as TAG_GATE,
    TAG_GATE_REASON as TAG_GATE_REASON,
    TAG_MODEL_VERSION as TAG_MODEL_VERSION,
    TAG_PARENT_DATASET_HASH as TAG_PARENT_DATASET_HASH,
    TAG_PROTOCOL as TAG_PROTOCOL,
    TAG_REGISTERED_MODEL as TAG_REGISTERED_MODEL,
    TAG_TRAINING_RUN as TAG_TRAINING_RUN,
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
