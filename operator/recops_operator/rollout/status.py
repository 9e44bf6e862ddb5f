"""Rollout status helpers: the weight constants, the initial status and the conditions."""

from __future__ import annotations

from datetime import datetime

from recops_operator.api import reasons
from recops_operator.api.conditions import Condition, ConditionStatus, set_condition
from recops_operator.api.rollout import (
    Decision,
    MeasurementPhase,
    RolloutCondition,
    RolloutPhase,
    RolloutStatus,
    Weights,
)
from recops_operator.rollout.actions import Action, Controls
from recops_operator.timeutil import format_time

HISTORY_LIMIT = 50
TERMINAL = (RolloutPhase.PROMOTED, RolloutPhase.ABORTED, RolloutPhase.FAILED)
ALL_STABLE = Weights(stable=100, candidate=0)
ALL_CANDIDATE = Weights(stable=0, candidate=100)


def weights_for(candidate_percent: int) -> Weights:
    return Weights(stable=100 - candidate_percent, candidate=candidate_percent)


def weights_text(weights: Weights) -> str:
    return f"stable={weights.stable} candidate={weights.candidate}"


def initial_status(stable: str, candidate: str, controls: Controls, now: datetime) -> RolloutStatus:
    return RolloutStatus(
        phase=RolloutPhase.PROGRESSING,
        current_step_index=0,
        weights=ALL_STABLE,
        weights_text=weights_text(ALL_STABLE),
        stable_version=stable,
        candidate_version=candidate,
        step_started_at=format_time(now),
        observed_retry=controls.retry,
        metrics=[],
        history=[],
        conditions=[],
    )


def paused_reason(status: RolloutStatus) -> str | None:
    for cond in status.conditions or []:
        if cond.type == RolloutCondition.PAUSED and cond.status == ConditionStatus.TRUE:
            return cond.reason
    return None


def held_for_human(status: RolloutStatus) -> bool:
    return status.phase == RolloutPhase.PAUSED and paused_reason(status) in reasons.HUMAN_PAUSES


def with_history(history: list[Decision] | None, entry: Decision) -> list[Decision]:
    """``history`` plus ``entry``, keeping the newest HISTORY_LIMIT decisions."""
    return [*(history or []), entry][-HISTORY_LIMIT:]


def rollout_conditions(st: RolloutStatus, action: Action, now: datetime) -> list[Condition]:
    """Conditions after ``action``; a transition time moves only when a status flips."""
    conds: list[Condition] = list(st.conditions or [])
    phase = st.phase
    done = phase in TERMINAL
    conds = set_condition(
        conds,
        RolloutCondition.PROGRESSING,
        phase == RolloutPhase.PROGRESSING,
        action.reason,
        action.message,
        now=now,
    )
    paused_reason = action.reason if phase == RolloutPhase.PAUSED else "NotPaused"
    conds = set_condition(
        conds,
        RolloutCondition.PAUSED,
        phase == RolloutPhase.PAUSED,
        paused_reason,
        action.message if phase == RolloutPhase.PAUSED else "",
        now=now,
    )
    conds = set_condition(
        conds,
        RolloutCondition.COMPLETED,
        done,
        phase.value if phase else "Pending",
        action.message if done else "",
        now=now,
    )
    gating = [m for m in st.metrics or [] if not m.dry_run]
    if gating:
        failing = [m for m in gating if m.phase == MeasurementPhase.FAILED]
        unknown = [m for m in gating if m.phase != MeasurementPhase.SUCCESSFUL]
        if failing:
            conds = set_condition(
                conds,
                RolloutCondition.ANALYSIS_PASSING,
                False,
                reasons.ANALYSIS_FAILED,
                "; ".join(f"{m.name}: {m.message}" for m in failing),
                now=now,
            )
        elif unknown:
            conds = set_condition(
                conds,
                RolloutCondition.ANALYSIS_PASSING,
                ConditionStatus.UNKNOWN,
                reasons.MEASUREMENT_INCONCLUSIVE,
                "; ".join(f"{m.name}: {m.message}" for m in unknown),
                now=now,
            )
        else:
            conds = set_condition(
                conds,
                RolloutCondition.ANALYSIS_PASSING,
                True,
                reasons.ANALYSIS_PASSED,
                "every gating metric passed its latest measurement",
                now=now,
            )
    ready = phase == RolloutPhase.PROMOTED
    conds = set_condition(
        conds,
        RolloutCondition.READY,
        ready,
        action.reason if phase in TERMINAL else "RolloutInProgress",
        action.message,
        now=now,
    )
    return conds
