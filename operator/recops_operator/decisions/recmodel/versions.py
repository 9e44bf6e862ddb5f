"""Which versions a RecModel knows: every TrainingRun that passed the offline gate with
engines adds its version, once. The newest new one becomes the candidate (or the stable
version while nothing serves); known versions are never re-decided."""

from __future__ import annotations

from recops_contracts.tracking import VERDICT_CANDIDATE
from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import ModelVersionStatus, RecModelStatus
from recops_operator.api.trainingrun import TrainingPhase, TrainingRun


def learn_versions(status: RecModelStatus, runs: list[TrainingRun], events: list[Event]) -> None:
    """Add the versions of runs that passed the gate to ``status``; appends events."""
    known = {v.version for v in status.versions or []}
    fresh = [
        r
        for r in runs
        if r.status
        and r.status.phase == TrainingPhase.SUCCEEDED
        and r.status.model_version
        and r.status.gate
        and r.status.gate.verdict == VERDICT_CANDIDATE
        and r.status.engines
        and r.status.model_version not in known
    ]
    fresh.sort(key=lambda r: r.status.completion_time or "" if r.status else "")
    for run in fresh:
        assert run.status is not None and run.status.model_version is not None
        version = run.status.model_version
        status.versions = [
            *(status.versions or []),
            ModelVersionStatus(
                version=version,
                training_run=run.metadata.name,
                metrics=run.status.metrics,
                engines=run.status.engines,
            ),
        ]
        if status.stable_version is None:
            status.stable_version = version
            events.append(Event("Normal", reasons.STABLE_VERSION, f"version {version} is served"))
        else:
            status.candidate_version = version
            events.append(
                Event(
                    "Normal",
                    reasons.CANDIDATE_VERSION,
                    f"version {version} passed the offline gate; roll it out",
                )
            )


def engines_of(status: RecModelStatus, version: str) -> set[str]:
    """The targets ``version`` has an engine for."""
    for v in status.versions or []:
        if v.version == version:
            return {e.target.value for e in v.engines or []}
    return set()
