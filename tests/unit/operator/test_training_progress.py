"""A running TrainingRun's progress, read from the epochs its MLflow run has logged."""

from __future__ import annotations

from datetime import UTC, datetime

from recops_operator.api.tracking import TrainingResult
from recops_operator.decisions.progress import progress_of

START_MS = int(datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE_MS = 60_000


def running(epochs_done: int) -> TrainingResult:
    """What `recops train` has logged after ``epochs_done`` epochs of a minute each: every
    epoch's metrics at the epoch (from 1) as their step."""
    at = START_MS + epochs_done * MINUTE_MS
    return TrainingResult(
        run_id="r",
        status="RUNNING",
        metrics={"val_ndcg_at_10": 0.4, "val_hr_at_10": 0.7, "loss": 1.2},
        steps={"val_ndcg_at_10": epochs_done, "val_hr_at_10": epochs_done, "loss": epochs_done},
        logged_ms={"val_ndcg_at_10": at, "val_hr_at_10": at, "loss": at},
        start_ms=START_MS,
    )


def test_progress_counts_epochs_and_estimates_the_finish_at_the_pace_so_far() -> None:
    progress = progress_of(running(5), epochs=20)
    assert progress is not None
    assert (progress.epoch, progress.epochs) == (5, 20)
    assert progress.validation == {"val_hr_at_10": 0.7, "val_ndcg_at_10": 0.4}
    assert progress.reported_at == "2026-03-01T12:05:00.000Z"
    # A minute per epoch: 15 more epochs end at 12:20.
    assert progress.estimated_finish == "2026-03-01T12:20:00.000Z"


def test_no_progress_before_the_first_epoch_and_never_past_the_total() -> None:
    before = TrainingResult(run_id="r", status="RUNNING", start_ms=START_MS)
    assert progress_of(before, epochs=20) is None
    # Metrics logged once, outside the epochs (the test metrics), have no step.
    once = TrainingResult(run_id="r", status="RUNNING", metrics={"x": 1.0}, steps={"x": 0})
    assert progress_of(once, epochs=20) is None
    past = progress_of(running(25), epochs=20)  # a resumed run counts from its first life
    assert past is not None and past.epoch == 20
    assert past.estimated_finish == past.reported_at


def test_without_times_the_finish_is_not_guessed() -> None:
    run = TrainingResult(
        run_id="r", status="RUNNING", metrics={"val_ndcg_at_10": 0.4}, steps={"val_ndcg_at_10": 2}
    )
    progress = progress_of(run, epochs=10)
    assert progress is not None and progress.epoch == 2
    assert progress.reported_at is None and progress.estimated_finish is None
