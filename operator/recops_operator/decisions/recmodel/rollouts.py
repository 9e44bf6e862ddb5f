"""Following the RecModel's Rollouts: the active one (for the candidate) moves the weights,
and a promoted one makes the candidate the stable version."""

from __future__ import annotations

from datetime import datetime, timedelta

from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import RecModelSpec, RecModelStatus
from recops_operator.api.rollout import Rollout, RolloutPhase, RolloutStatus
from recops_operator.timeutil import parse_time

ACTIVE_ROLLOUT = {RolloutPhase.PENDING, RolloutPhase.PROGRESSING, RolloutPhase.PAUSED}


def follow_rollouts(
    status: RecModelStatus, rollouts: list[Rollout], events: list[Event]
) -> Rollout | None:
    """The candidate's active Rollout, if any; a promoted one updates ``status``."""
    active = None
    for ro in rollouts:
        rs = ro.status
        if rs is None or rs.phase is None:
            continue
        if rs.phase in ACTIVE_ROLLOUT and ro.spec.candidate_version == status.candidate_version:
            active = ro
        elif (
            rs.phase == RolloutPhase.PROMOTED
            and ro.spec.candidate_version == status.candidate_version
        ):
            events.append(
                Event(
                    "Normal",
                    reasons.PROMOTED,
                    f"version {status.candidate_version} replaces {status.stable_version}",
                )
            )
            status.stable_version, status.candidate_version = status.candidate_version, None
    return active


def decided_at(rs: RolloutStatus, action: str) -> datetime | None:
    """When the rollout last took ``action`` (its verdict is always the newest decision)."""
    for decision in reversed(rs.history or []):
        if decision.action == action:
            return parse_time(decision.time)
    return None


def scale_down_delay(spec: RecModelSpec, ro: Rollout) -> timedelta:
    """How long the loser of ``ro`` keeps its pods (the Rollout's policy, else the RecModel's)."""
    return timedelta(seconds=(ro.spec.policy or spec.rollout_policy).scale_down_delay_seconds)
