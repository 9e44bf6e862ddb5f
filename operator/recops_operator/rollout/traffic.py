"""Backend weights of a RecModel's GRPCRoute (pure: the route in, the new rules out).

The RecModel controller renders the route with one backend per served version and target
(named by ``object_name(recmodel, version, target)``); a rollout only rewrites the
weights of the stable and candidate backends, in every rule (one rule per target).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from recops_operator.api.rollout import Weights
from recops_operator.render.common import object_name


@dataclass(frozen=True)
class RouteWeights:
    rules: list[dict[str, Any]]
    changed: bool
    # Rules (by index) with no backend for the candidate: the candidate is not served there.
    missing_candidate: list[int]


def _version_of(
    backend_name: str, recmodel: str, versions: dict[str, str], target: str
) -> str | None:
    for version, role in versions.items():
        if backend_name == object_name(recmodel, version, target):
            return role
    return None


def route_weights(
    route: dict[str, Any],
    recmodel: str,
    targets: list[str],
    stable: str,
    candidate: str,
    weights: Weights,
) -> RouteWeights:
    """The route's rules with the stable and candidate backends at ``weights``.

    ``targets`` lists the RecModel's targets in rule order (the renderer's order); other
    backends keep their weight.
    """
    rules = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    roles = {stable: "stable", candidate: "candidate"}
    changed = False
    missing: list[int] = []
    for index, rule in enumerate(rules):
        seen_candidate = False
        for backend in rule.get("backendRefs") or []:
            role = None
            for target in targets:
                role = _version_of(str(backend.get("name")), recmodel, roles, target)
                if role is not None:
                    break
            if role is None:
                continue
            seen_candidate = seen_candidate or role == "candidate"
            want = weights.stable if role == "stable" else weights.candidate
            if backend.get("weight", 1) != want:
                backend["weight"] = want
                changed = True
        if not seen_candidate:
            missing.append(index)
    return RouteWeights(rules, changed, missing)
