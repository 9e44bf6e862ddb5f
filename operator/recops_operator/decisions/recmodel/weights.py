"""What runs where and gets which traffic: a Deployment per served version and target it
has an engine for, the weights of the RecModel's route (stable at 100 unless a Rollout
moved them), the versions behind each target's stable and canary Services, their split in
a user's GRPCRoute, and who writes those weights now."""

from __future__ import annotations

from recops_operator.api.recmodel import Endpoint, RecModelSpec, RecModelStatus
from recops_operator.api.rollout import Rollout, Weights
from recops_operator.decisions.recmodel.observation import (
    DeploymentObservation,
    RecModelObservation,
)
from recops_operator.decisions.recmodel.rollouts import ACTIVE_ROLLOUT
from recops_operator.decisions.recmodel.versions import engines_of
from recops_operator.render.serving import ServedVersion


def served(
    namespace: str, name: str, spec: RecModelSpec, status: RecModelStatus, versions: list[str]
) -> list[ServedVersion]:
    """Each of ``versions`` on each target it has an engine for."""
    out = []
    for version in versions:
        built = engines_of(status, version)
        out += [
            ServedVersion(namespace, name, version, t, spec.retraining.drift.statistics)
            for t in spec.targets
            if t.name.value in built
        ]
    return out


def version_weights(
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


def weights_summary(weights: dict[str, int]) -> str | None:
    """``status.weights``: ``1=90 2=10``."""
    return " ".join(f"{v}={w}" for v, w in weights.items()) or None


def endpoints(served: list[ServedVersion], obs: RecModelObservation) -> list[Endpoint] | None:
    """Where each served version and target answers, with its ready replicas."""
    return [
        Endpoint(
            version=sv.version,
            target=sv.target.name,
            service=sv.name,
            grpc_address=sv.grpc_address,
            ready_replicas=obs.deployments.get(sv.name, DeploymentObservation(0, 0)).ready,
        )
        for sv in served
    ] or None


def roles(status: RecModelStatus, served: list[ServedVersion]) -> dict[str, tuple[str, str]]:
    """Per target where the stable version runs: (stable, canary), the canary being the
    candidate where it runs, else the stable version again."""
    stable, candidate = status.stable_version, status.candidate_version
    on = {(sv.version, sv.target.name.value) for sv in served}
    return {
        target: (version, candidate if candidate and (candidate, target) in on else version)
        for version, target in sorted(on)
        if version == stable
    }


def role_weights(status: RecModelStatus, weights: dict[str, int]) -> Weights | None:
    """The stable/canary split of a user's GRPCRoute; None while nothing is stable."""
    if status.stable_version is None or status.stable_version not in weights:
        return None
    candidate = weights.get(status.candidate_version or "", 0)
    return Weights(stable=weights[status.stable_version], candidate=candidate)


def rollout_holds_weights(status: RecModelStatus, rollouts: list[Rollout]) -> bool:
    """Whether a Rollout owns the route's weights now: one of the candidate without a
    verdict yet. Its controller alone moves them (as Argo Rollouts' does during a canary);
    the RecModel controller then keeps the weights the route has.

    A Rollout without a status counts: its first step reaches the route before its status
    says so. Once it reaches a verdict (promoted, aborted, failed) the weights are the
    RecModel's again, and that verdict's weights are the ones the RecModel sets.
    """
    candidate = status.candidate_version
    return candidate is not None and any(
        ro.spec.candidate_version == candidate
        and (ro.status is None or ro.status.phase is None or ro.status.phase in ACTIVE_ROLLOUT)
        for ro in rollouts
    )
