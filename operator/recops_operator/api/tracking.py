"""A training run as the operator reads it back from MLflow.

The tag and metric names are the shared contract's (``recops_contracts.tracking``); the
MLflow client finds the run and the TrainingRun decisions read it as a
:class:`TrainingResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recops_contracts.tracking import TAG_GATE


@dataclass(frozen=True)
class TrainingResult:
    """What a training wrote to MLflow: while it runs, its per-epoch metrics so far."""

    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # The step (the epoch, for per-epoch metrics) of each metric's latest value, when it
    # was logged and when the run started (milliseconds since the epoch, as MLflow has it).
    steps: dict[str, int] = field(default_factory=dict)
    logged_ms: dict[str, int] = field(default_factory=dict)
    start_ms: int | None = None

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
