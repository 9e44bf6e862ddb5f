"""What a RecModel should look like: which versions to serve, with which weights, whether to
train, and the status that tells the story. Pure functions of typed inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from recops_operator.api.conditions import (
    ConditionStatus,
    aggregate_ready,
    get_condition,
    set_condition,
)
from recops_operator.api.recmodel import (
    DeploymentTarget,
    Endpoint,
    ModelVersionStatus,
    RecModelCondition,
    RecModelPhase,
    RecModelSpec,
    RecModelStatus,
    RetiringVersion,
)
from recops_operator.api.rollout import Rollout, RolloutPhase, RolloutStatus, Weights
from recops_operator.api.trainingrun import TrainingPhase, TrainingRun, TrainingRunSpec
from recops_operator.decisions.events import Event
from recops_operator.decisions.retraining import LiveSignals, automatic_run, watch_drift
from recops_operator.render.common import object_name
from recops_operator.render.serving import ServedVersion
from recops_operator.timeutil import format_time, parse_time, status_time

C = RecModelCondition
ACTIVE_ROLLOUT = {RolloutPhase.PENDING, RolloutPhase.PROGRESSING, RolloutPhase.PAUSED}


@dataclass(frozen=True)
class DeploymentObservation:
    desired: int
    ready: int
    version: str | None = None  # the recops.io/version label


@dataclass(frozen=True)
class RecModelObservation:
    now: datetime
    generation: int | None
    created: datetime
    runs: list[TrainingRun]
    rollouts: list[Rollout]
    deployments: dict[str, DeploymentObservation] = field(default_factory=dict)
    signals: LiveSignals | None = None  # live traffic, when retraining needs to know


@dataclass(frozen=True)
class RecModelPlan:
    status: RecModelStatus
    start_training: TrainingRunSpec | None
    served: list[ServedVersion]
    weights: dict[str, int]
    events: tuple[Event, ...]
    # Per target, the versions its stable and canary Services select.
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The stable/canary split of a user's GRPCRoute (trafficRouting.grpcRoute).
    role_weights: Weights | None = None


def _learn_versions(status: RecModelStatus, runs: list[TrainingRun], events: list[Event]) -> None:
    """Add versions from runs that passed the gate; the newest new one becomes the candidate
    (or the stable version when nothing serves yet). Known versions are never re-decided."""
    known = {v.version for v in status.versions or []}
    fresh = [
        r
        for r in runs
        if r.status
        and r.status.phase == TrainingPhase.SUCCEEDED
        and r.status.model_version
        and r.status.gate
        and r.status.gate.verdict == "candidate"
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
            events.append(Event("Normal", "StableVersion", f"version {version} is served"))
        else:
            status.candidate_version = version
            events.append(
                Event(
                    "Normal",
                    "CandidateVersion",
                    f"version {version} passed the offline gate; roll it out",
                )
            )


def _follow_rollouts(
    status: RecModelStatus, rollouts: list[Rollout], events: list[Event]
) -> Rollout | None:
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
                    "Promoted",
                    f"version {status.candidate_version} replaces {status.stable_version}",
                )
            )
            status.stable_version, status.candidate_version = status.candidate_version, None
    return active


def _engines(status: RecModelStatus, version: str) -> set[str]:
    for v in status.versions or []:
        if v.version == version:
            return {e.target.value for e in v.engines or []}
    return set()


def _decided_at(rs: RolloutStatus, action: str) -> datetime | None:
    """When the rollout last took ``action`` (its verdict is always the newest decision)."""
    for decision in reversed(rs.history or []):
        if decision.action == action:
            return parse_time(decision.time)
    return None


def _scale_down_delay(spec: RecModelSpec, ro: Rollout) -> timedelta:
    return timedelta(seconds=(ro.spec.policy or spec.rollout_policy).scale_down_delay_seconds)


def _retiring(
    spec: RecModelSpec, status: RecModelStatus, rollouts: list[Rollout], now: datetime
) -> list[RetiringVersion] | None:
    """Former stable versions still inside their rollout's scaleDownDelaySeconds.

    Worked out from the Rollouts on every pass rather than remembered, so a deleted Rollout
    or an edited delay takes effect at once and nothing is left behind.
    """
    until: dict[str, datetime] = {}
    for ro in rollouts:
        rs = ro.status
        if rs is None or rs.phase != RolloutPhase.PROMOTED or rs.stable_version is None:
            continue
        old = rs.stable_version
        promoted = _decided_at(rs, "promote")
        if old in (status.stable_version, status.candidate_version) or promoted is None:
            continue
        at = promoted + _scale_down_delay(spec, ro)
        if at > now:
            until[old] = max(at, until.get(old, at))
    return [
        RetiringVersion(version=v, scale_down_at=format_time(at)) for v, at in sorted(until.items())
    ] or None


def _candidate_parked(
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
        and (at := _decided_at(ro.status, "abort")) is not None
    ]
    if len(aborted) < len(mine):  # a promoted or other verdict: not parked
        return False
    at, ro = max(aborted, key=lambda pair: pair[0])
    return at + _scale_down_delay(spec, ro) <= now


def _serving_versions(status: RecModelStatus, candidate_parked: bool) -> list[str]:
    """Stable, candidate (unless parked), then retiring versions: each once, in that order."""
    versions = [status.stable_version]
    if not candidate_parked:
        versions.append(status.candidate_version)
    versions += [r.version for r in status.retiring or []]
    return list(dict.fromkeys(v for v in versions if v is not None))


def _served(
    namespace: str, name: str, spec: RecModelSpec, status: RecModelStatus, versions: list[str]
) -> list[ServedVersion]:
    served = []
    for version in versions:
        built = _engines(status, version)
        served += [
            ServedVersion(namespace, name, version, t)
            for t in spec.targets
            if t.name.value in built
        ]
    return served


def _weights(
    status: RecModelStatus, rollout: Rollout | None, versions: list[str]
) -> dict[str, int]:
    """Stable at 100 unless a rollout moved it; every other served version at 0."""
    if status.stable_version is None:
        return {}
    weights = dict.fromkeys(versions, 0)
    weights[status.stable_version] = 100
    candidate = status.candidate_version
    if candidate in weights and rollout is not None and rollout.status and rollout.status.weights:
        weights[status.stable_version] = rollout.status.weights.stable
        weights[candidate] = rollout.status.weights.candidate
    return weights


def _roles(status: RecModelStatus, served: list[ServedVersion]) -> dict[str, tuple[str, str]]:
    """Per target where the stable version runs: (stable, canary), the canary being the
    candidate where it runs, else the stable version again."""
    stable, candidate = status.stable_version, status.candidate_version
    on = {(sv.version, sv.target.name.value) for sv in served}
    return {
        target: (version, candidate if candidate and (candidate, target) in on else version)
        for version, target in sorted(on)
        if version == stable
    }


def _role_weights(status: RecModelStatus, weights: dict[str, int]) -> Weights | None:
    if status.stable_version is None or status.stable_version not in weights:
        return None
    candidate = weights.get(status.candidate_version or "", 0)
    return Weights(stable=weights[status.stable_version], candidate=candidate)


def _scaled_down(obs: RecModelObservation, versions: list[str]) -> list[Event]:
    """An event per version whose Deployments exist but are no longer wanted."""
    gone = sorted({d.version for d in obs.deployments.values() if d.version} - set(versions))
    return [
        Event("Normal", "ScaledDown", f"version {v} is no longer served: its pods are deleted")
        for v in gone
    ]


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
    if any(
        r.status is None or r.status.phase not in {TrainingPhase.SUCCEEDED, TrainingPhase.FAILED}
        for r in obs.runs
    ):
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


def plan(
    namespace: str,
    name: str,
    spec: RecModelSpec,
    status: RecModelStatus | None,
    obs: RecModelObservation,
) -> RecModelPlan:
    s = (status or RecModelStatus()).model_copy(deep=True)
    events: list[Event] = []
    gen, now = obs.generation, obs.now

    def cond(t: C, st: ConditionStatus | bool, reason: str, msg: str = "") -> None:
        s.conditions = set_condition(s.conditions or [], t.value, st, reason, msg, gen, now)

    cond(C.SPEC_VALID, True, "Valid")
    runs = {r.metadata.name: r for r in obs.runs}
    # A finished active run is released; its version (if any) is learnt just below.
    active_run = runs.get(s.active_training_run) if s.active_training_run else None
    if (
        active_run
        and active_run.status
        and active_run.status.phase in {TrainingPhase.SUCCEEDED, TrainingPhase.FAILED}
    ):
        if active_run.status.phase == TrainingPhase.FAILED:
            cond(
                C.TRAINED,
                s.stable_version is not None,
                "TrainingFailed",
                f"TrainingRun {active_run.metadata.name}: {active_run.status.message}",
            )
            events.append(Event("Warning", "TrainingFailed", active_run.status.message or ""))
        s.active_training_run, active_run = None, None
    _learn_versions(s, obs.runs, events)
    rollout = _follow_rollouts(s, obs.rollouts, events)

    s.drift, drift_reason = watch_drift(spec.retraining.drift, s, obs.signals, now)
    start = _training_to_start(name, spec, s, obs, drift_reason, events)
    start_spec = None
    if start:
        s.active_training_run, s.last_training_time = start, status_time(now)
        start_spec = TrainingRunSpec(rec_model=name)
        events.append(Event("Normal", "TrainingStarted", f"TrainingRun {start}"))

    s.retiring = _retiring(spec, s, obs.rollouts, now)
    versions = _serving_versions(s, _candidate_parked(spec, s, obs.rollouts, now))
    events += _scaled_down(obs, versions)
    served = _served(namespace, name, spec, s, versions)
    weights = _weights(s, rollout, versions)
    s.weights = " ".join(f"{v}={w}" for v, w in weights.items()) or None
    s.endpoints = [
        Endpoint(
            version=sv.version,
            target=sv.target.name,
            service=sv.name,
            grpc_address=sv.grpc_address,
            ready_replicas=obs.deployments.get(sv.name, DeploymentObservation(0, 0)).ready,
        )
        for sv in served
    ] or None

    active = runs.get(s.active_training_run or "")
    compiling = bool(active and active.status and active.status.phase == TrainingPhase.COMPILING)
    phase = _report(s, spec, served, rollout, obs, compiling)
    if status is None or status.phase != phase:
        events.append(Event("Normal", f"Phase{phase.value}", f"phase {phase.value}"))
    s.observed_generation = gen
    return RecModelPlan(
        s, start_spec, served, weights, tuple(events), _roles(s, served), _role_weights(s, weights)
    )


def _report(
    s: RecModelStatus,
    spec: RecModelSpec,
    served: list[ServedVersion],
    rollout: Rollout | None,
    obs: RecModelObservation,
    compiling: bool,
) -> RecModelPhase:
    """Per-part conditions, rolled up into Ready, and the phase for printer columns."""
    gen, now = obs.generation, obs.now

    def cond(t: C, st: ConditionStatus | bool, reason: str, msg: str = "") -> None:
        s.conditions = set_condition(s.conditions or [], t.value, st, reason, msg, gen, now)

    if s.stable_version:
        cond(C.TRAINED, True, "Trained", f"stable version {s.stable_version}")
    elif s.active_training_run:
        cond(C.TRAINED, ConditionStatus.UNKNOWN, "Training", f"TrainingRun {s.active_training_run}")
    elif get_condition(s.conditions or [], C.TRAINED.value) is None:
        cond(C.TRAINED, False, "NotTrained", "no version has passed the offline gate yet")
    missing = [
        t.name.value
        for t in spec.targets
        if s.stable_version and t.name.value not in _engines(s, s.stable_version)
    ]
    if s.stable_version is None:
        cond(C.ENGINES_READY, ConditionStatus.UNKNOWN, "NoStableVersion", "nothing to compile yet")
    elif missing:
        cond(C.ENGINES_READY, False, "EnginesMissing", f"no engine for {', '.join(missing)}")
    else:
        cond(C.ENGINES_READY, True, "EnginesBuilt", f"version {s.stable_version}")
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
            "NoStableVersion",
            "no version is served yet",
        )
    elif not_ready:
        cond(C.SERVING, False, "DeploymentsNotReady", f"not ready: {', '.join(not_ready)}")
    else:
        cond(C.SERVING, True, "Serving", f"version {s.stable_version}: {s.weights}")
    seen = [obs.deployments.get(sv.name) for sv in served]
    short = [sv.name for sv, d in zip(served, seen, strict=True) if d and 0 < d.ready < d.desired]
    cond(
        C.DEGRADED,
        bool(short),
        "ReplicasUnavailable" if short else "AllReplicasAvailable",
        f"below desired replicas: {', '.join(short)}" if short else "",
    )
    if rollout is not None:
        cond(C.ROLLING_OUT, True, "RolloutActive", f"Rollout {rollout.metadata.name}: {s.weights}")
    else:
        cond(C.ROLLING_OUT, False, "NoActiveRollout")
    s.conditions = aggregate_ready(
        s.conditions or [],
        [C.SPEC_VALID, C.TRAINED, C.ENGINES_READY, C.SERVING],
        [C.DEGRADED],
        gen,
        now,
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
    s = (status or RecModelStatus()).model_copy(deep=True)
    for t in (C.SPEC_VALID, C.READY):
        s.conditions = set_condition(
            s.conditions or [], t.value, False, "InvalidSpec", message, generation, now
        )
    s.phase = RecModelPhase.FAILED
    s.observed_generation = generation
    return s
