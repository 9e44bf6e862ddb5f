"""How far a running training is: the epochs it has finished, its latest validation
metrics and, at the pace so far, when its last epoch ends (the shape of Kubeflow
Trainer's progress proposal). Read from the MLflow run the trainer logs to: every epoch's
metrics carry the epoch, counted from 1, as their step."""

from __future__ import annotations

from datetime import UTC, datetime

from recops_operator.api.tracking import TrainingResult
from recops_operator.api.trainingrun import TrainingProgress
from recops_operator.timeutil import format_time

VALIDATION_PREFIX = "val_"


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def progress_of(run: TrainingResult, epochs: int) -> TrainingProgress | None:
    """The progress of ``run`` out of ``epochs``; None before its first epoch ends."""
    latest = max(run.steps.values(), default=0)
    if latest < 1:
        return None
    done = min(latest, epochs)  # a resumed run counts its first life's epochs too
    last_ms = max((run.logged_ms.get(k, 0) for k, s in run.steps.items() if s == latest))
    reported = _moment(last_ms) if last_ms else None
    finish = None
    if reported is not None and run.start_ms is not None and last_ms > run.start_ms:
        per_epoch = (reported - _moment(run.start_ms)) / done
        finish = format_time(reported + per_epoch * (epochs - done))
    validation = {k: v for k, v in sorted(run.metrics.items()) if k.startswith(VALIDATION_PREFIX)}
    return TrainingProgress(
        epoch=done,
        epochs=epochs,
        validation=validation or None,
        reported_at=format_time(reported) if reported is not None else None,
        estimated_finish=finish,
    )
