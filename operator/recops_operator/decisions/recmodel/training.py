"""When a RecModel trains: a finished TrainingRun is released (a failed one reported), the
first run of each spec generation starts while nothing has passed the gate, then the
scheduled and drift runs of ``retraining.decision``; never beside a run in progress."""

from __future__ import annotations

from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import RecModelCondition, RecModelSpec, RecModelStatus
from recops_operator.api.trainingrun import TrainingPhase, TrainingRunSpec
from recops_operator.decisions.recmodel.observation import RecModelObservation
from recops_operator.decisions.recmodel.report import condition
from recops_operator.render.common import object_name
from recops_operator.retraining.decision import automatic_run, watch_drift
from recops_operator.timeutil import status_time

FINISHED = {TrainingPhase.SUCCEEDED, TrainingPhase.FAILED}


def release_finished_run(s: RecModelStatus, obs: RecModelObservation, events: list[Event]) -> None:
    """Forget the active run once it finished (its version, if any, is learnt next)."""
    runs = {r.metadata.name: r for r in obs.runs}
    run = runs.get(s.active_training_run) if s.active_training_run else None
    if run is None or run.status is None or run.status.phase not in FINISHED:
        return
    if run.status.phase == TrainingPhase.FAILED:
        condition(
            s,
            obs,
            RecModelCondition.TRAINED,
            s.stable_version is not None,
            reasons.TRAINING_FAILED,
            f"TrainingRun {run.metadata.name}: {run.status.message}",
        )
        events.append(Event("Warning", reasons.TRAINING_FAILED, run.status.message or ""))
    s.active_training_run = None


def start_training(
    name: str,
    spec: RecModelSpec,
    s: RecModelStatus,
    obs: RecModelObservation,
    events: list[Event],
) -> TrainingRunSpec | None:
    """The TrainingRun to create now, recorded in ``s`` as the active one; or None.

    Watches the stable version's drift on the way (``s.drift``).
    """
    s.drift, drift_reason = watch_drift(spec.retraining.drift, s, obs.signals, obs.now)
    start = _training_to_start(name, spec, s, obs, drift_reason, events)
    if not start:
        return None
    s.active_training_run, s.last_training_time = start, status_time(obs.now)
    events.append(Event("Normal", reasons.TRAINING_STARTED, f"TrainingRun {start}"))
    return TrainingRunSpec(rec_model=name)


def _training_to_start(
    name: str,
    spec: RecModelSpec,
    status: RecModelStatus,
    obs: RecModelObservation,
    drift_reason: str | None,
    events: list[Event],
) -> str | None:
    """The name of the TrainingRun to start now, or None."""
    if status.active_training_run:
        return None
    if any(r.status is None or r.status.phase not in FINISHED for r in obs.runs):
        return None  # a run (maybe a user's) is in progress
    if status.stable_version is None and not status.versions:
        # One initial run per spec generation: a failed run is not retried until the spec changes.
        initial = object_name(name, f"g{obs.generation or 1}")
        if all(r.metadata.name != initial for r in obs.runs):
            return initial
        return None
    return automatic_run(
        name, spec, status, obs.signals, drift_reason, obs.now, obs.created, events
    )


def compiling(s: RecModelStatus, obs: RecModelObservation) -> bool:
    """Whether the active run is compiling engines (the phase says so)."""
    active = next((r for r in obs.runs if r.metadata.name == s.active_training_run), None)
    return bool(active and active.status and active.status.phase == TrainingPhase.COMPILING)
