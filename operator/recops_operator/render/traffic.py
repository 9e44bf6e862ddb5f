"""Backend weights of a GRPCRoute (pure: the route in, the new rules out).

Two kinds of route carry a RecModel's traffic. Its own, rendered by the RecModel
controller, has one backend per served version and target, named
``object_name(recmodel, version, target)``. A user's route (``trafficRouting.grpcRoute``)
lists, per target, the RecModel's two role Services, ``<recmodel>-<target>-stable`` and
``-canary``, whose selectors follow the versions (as with Argo Rollouts' stable and
canary Services). Either way a rollout only rewrites the weights of the stable and
candidate backends; every other backend and rule is left as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from recops_operator.api.rollout import Weights
from recops_operator.render.common import object_name
from recops_operator.render.serving import role_service_name

Role = Literal["stable", "candidate"]


@dataclass(frozen=True)
class RouteWeights:
    rules: list[dict[str, Any]]
    changed: bool
    # Rules (by index) that route to the RecModel but have no candidate backend.
    missing_candidate: list[int]
    # Whether any rule routes to the RecModel at all.
    found: bool


def version_backends(
    recmodel: str, targets: list[str], stable: str, candidate: str
) -> dict[str, Role]:
    """Backend names of the RecModel's own route, by role."""
    roles: dict[str, Role] = {}
    for target in targets:
        roles[object_name(recmodel, stable, target)] = "stable"
        roles[object_name(recmodel, candidate, target)] = "candidate"
    return roles


def role_backends(recmodel: str, targets: list[str]) -> dict[str, Role]:
    """Backend names a user's route lists for the RecModel: its role Services."""
    roles: dict[str, Role] = {}
    for target in targets:
        roles[role_service_name(recmodel, target, "stable")] = "stable"
        roles[role_service_name(recmodel, target, "canary")] = "candidate"
    return roles


def route_weights(route: dict[str, Any], roles: dict[str, Role], weights: Weights) -> RouteWeights:
    """The route's rules with the backends named in ``roles`` at ``weights``."""
    rules = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    changed = found = False
    missing: list[int] = []
    for index, rule in enumerate(rules):
        mine = [b for b in rule.get("backendRefs") or [] if str(b.get("name")) in roles]
        if not mine:
            continue
        found = True
        if not any(roles[str(b["name"])] == "candidate" for b in mine):
            missing.append(index)
        for backend in mine:
            role = roles[str(backend["name"])]
            want = weights.stable if role == "stable" else weights.candidate
            if backend.get("weight", 1) != want:
                backend["weight"] = want
                changed = True
    return RouteWeights(rules, changed, missing, found)
