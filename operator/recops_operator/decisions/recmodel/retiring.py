"""Which versions keep their pods, and which go: a former stable version retires at zero
traffic for its rollout's ``scaleDownDelaySeconds``; an aborted candidate is parked once as
long has passed. Both are worked out from the Rollouts on every pass rather than
remembered, so a deleted Rollout or an edited delay takes effect at once and nothing is
left behind."""

from __future__ import annotations

from datetime import datetime

from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import RecModelSpec, RecModelStatus, RetiringVersion
from recops_operator.api.rollout import Rollout, RolloutPhase
from recops_operator.decisions.recmodel.observation import RecModelObservation
from recops_operator.decisions.recmodel.rollouts import (
    ACTIVE_ROLLOUT,
    decided_at,
    scale_down_delay,
)
from recops_operator.timeutil import format_time


def retiring(
    spec: RecModelSpec, status: RecModelStatus, rollouts: list[Rollout], now: datetime
) -> list[RetiringVersion] | None:
    """Former stable versions still inside their rollout's scaleDownDelaySeconds."""
    until: dict[str, datetime] = {}
    for ro in rollouts:
        rs = ro.status
        if rs is None or rs.phase != RolloutPhase.PROMOTED or rs.stable_version is None:
            continue
        old = rs.stable_version
        promoted = decided_at(rs, "promote")
        if old in (status.stable_version, status.candidate_version) or promoted is None:
            continue
        at = promoted + scale_down_delay(spec, ro)
        if at > now:
            until[old] = max(at, until.get(old, at))
    return [
        RetiringVersion(version=v, scale_down_at=format_time(at)) for v, at in sorted(until.items())
    ] or None


def candidate_parked(
    spec: RecModelSpec, status: RecModelStatus, rollouts: list[Rollout], now: datetime
) -> bool:
    """The candidate's newest rollout was aborted more than scaleDownDelaySeconds ago, and
    none is active: its pods go. A retry makes the rollout active and brings them back."""
    mine = [
        ro
        for ro in rollouts
        if ro.spec.candidate_version == status.candidate_version and ro.status and ro.status.phase
    ]
    if not mine or any(ro.status and ro.status.phase in ACTIVE_ROLLOUT for ro in mine):
        return False
    aborted = [
        (at, ro)
        for ro in mine
        if ro.status
        and ro.status.phase == RolloutPhase.ABORTED
        and (at := decided_at(ro.status, "abort")) is not None
    ]
    if len(aborted) < len(mine):  # a promoted or other verdict: not parked
        return False
    at, ro = max(aborted, key=lambda pair: pair[0])
    return at + scale_down_delay(spec, ro) <= now


def serving_versions(status: RecModelStatus, candidate_parked: bool) -> list[str]:
    """Stable, candidate (unless parked), then retiring versions: each once, in that order."""
    versions = [status.stable_version]
    if not candidate_parked:
        versions.append(status.candidate_version)
    versions += [r.version for r in status.retiring or []]
    return list(dict.fromkeys(v for v in versions if v is not None))


def scaled_down(obs: RecModelObservation, versions: list[str]) -> list[Event]:
    """An event per version whose Deployments exist but are no longer wanted."""
    gone = sorted({d.version for d in obs.deployments.values() if d.version} - set(versions))
    return [
        Event(
            "Normal",
            reasons.SCALED_DOWN,
            f"version {v} is no longer served: its pods are deleted",
        )
        for v in gone
    ]
