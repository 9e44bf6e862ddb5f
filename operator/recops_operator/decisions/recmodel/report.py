"""How a RecModel reports: one condition per part (Trained, EnginesReady, Serving,
Degraded, RollingOut) rolled up into Ready, the phase for the printer columns, and the
status of a spec that can never work."""

from __future__ import annotations

from datetime import datetime

from recops_operator.api import reasons
from recops_operator.api.conditions import (
    ConditionStatus,
    aggregate_ready,
    get_condition,
    set_condition,
)
from recops_operator.api.recmodel import (
    DeploymentTarget,
    RecModelCondition,
    RecModelPhase,
    RecModelSpec,
    RecModelStatus,
)
from recops_operator.api.rollout import Rollout
from recops_operator.decisions.recmodel.observation import (
    DeploymentObservation,
    RecModelObservation,
)
from recops_operator.decisions.recmodel.versions import engines_of
from recops_operator.render.serving import ServedVersion

C = RecModelCondition


def condition(
    s: RecModelStatus,
    obs: RecModelObservation,
    t: C,
    st: ConditionStatus | bool,
    reason: str,
    msg: str = "",
) -> None:
    """Set condition ``t`` of ``s`` as of this observation."""
    s.conditions = set_condition(
        s.conditions or [], t.value, st, reason, msg, obs.generation, obs.now
    )


def report(
    s: RecModelStatus,
    spec: RecModelSpec,
    served: list[ServedVersion],
    rollout: Rollout | None,
    obs: RecModelObservation,
    compiling: bool,
) -> RecModelPhase:
    """Per-part conditions, rolled up into Ready, and the phase for printer columns."""

    def cond(t: C, st: ConditionStatus | bool, reason: str, msg: str = "") -> None:
        condition(s, obs, t, st, reason, msg)

    if s.stable_version:
        cond(C.TRAINED, True, reasons.TRAINED, f"stable version {s.stable_version}")
    elif s.active_training_run:
        cond(
            C.TRAINED,
            ConditionStatus.UNKNOWN,
            reasons.TRAINING,
            f"TrainingRun {s.active_training_run}",
        )
    elif get_condition(s.conditions or [], C.TRAINED.value) is None:
        cond(C.TRAINED, False, reasons.NOT_TRAINED, "no version has passed the offline gate yet")
    missing = [
        t.name.value
        for t in spec.targets
        if s.stable_version and t.name.value not in engines_of(s, s.stable_version)
    ]
    if s.stable_version is None:
        cond(
            C.ENGINES_READY,
            ConditionStatus.UNKNOWN,
            reasons.NO_STABLE_VERSION,
            "nothing to compile yet",
        )
    elif missing:
        cond(C.ENGINES_READY, False, reasons.ENGINES_MISSING, f"no engine for {', '.join(missing)}")
    else:
        cond(C.ENGINES_READY, True, reasons.ENGINES_BUILT, f"version {s.stable_version}")
    stable_served = [sv for sv in served if sv.version == s.stable_version]
    not_ready = [
        sv.name
        for sv in stable_served
        if obs.deployments.get(sv.name, DeploymentObservation(1, 0)).ready < 1
        and _desired(sv.target) > 0
    ]
    if not stable_served:
        cond(
            C.SERVING,
            ConditionStatus.UNKNOWN if s.active_training_run else False,
            reasons.NO_STABLE_VERSION,
            "no version is served yet",
        )
    elif not_ready:
        cond(
            C.SERVING,
            False,
            reasons.DEPLOYMENTS_NOT_READY,
            f"not ready: {', '.join(not_ready)}",
        )
    else:
        cond(C.SERVING, True, reasons.SERVING, f"version {s.stable_version}: {s.weights}")
    seen = [obs.deployments.get(sv.name) for sv in served]
    short = [sv.name for sv, d in zip(served, seen, strict=True) if d and 0 < d.ready < d.desired]
    cond(
        C.DEGRADED,
        bool(short),
        reasons.REPLICAS_UNAVAILABLE if short else reasons.ALL_REPLICAS_AVAILABLE,
        f"below desired replicas: {', '.join(short)}" if short else "",
    )
    if rollout is not None:
        cond(
            C.ROLLING_OUT,
            True,
            reasons.ROLLOUT_ACTIVE,
            f"Rollout {rollout.metadata.name}: {s.weights}",
        )
    else:
        cond(C.ROLLING_OUT, False, reasons.NO_ACTIVE_ROLLOUT)
    s.conditions = aggregate_ready(
        s.conditions or [],
        [C.SPEC_VALID, C.TRAINED, C.ENGINES_READY, C.SERVING],
        [C.DEGRADED],
        obs.generation,
        obs.now,
    )

    if rollout is not None:
        s.phase = RecModelPhase.ROLLING_OUT
    elif short:
        s.phase = RecModelPhase.DEGRADED
    elif stable_served and not not_ready:
        s.phase = RecModelPhase.SERVING
    elif compiling:
        s.phase = RecModelPhase.COMPILING
    elif s.active_training_run:
        s.phase = RecModelPhase.TRAINING
    else:
        s.phase = RecModelPhase.PENDING
    return s.phase


def _desired(target: DeploymentTarget) -> int:
    return target.autoscaling.min_replicas if target.autoscaling.enabled else target.replicas


def invalid_spec(
    status: RecModelStatus | None, message: str, generation: int | None, now: datetime
) -> RecModelStatus:
    """The status of a RecModel whose spec can never work."""
    s = (status or RecModelStatus()).model_copy(deep=True)
    for t in (C.SPEC_VALID, C.READY):
        s.conditions = set_condition(
            s.conditions or [], t.value, False, reasons.INVALID_SPEC, message, generation, now
        )
    s.phase = RecModelPhase.FAILED
    s.observed_generation = generation
    return s
