"""The RecModel's own GRPCRoute: its shape is the RecModel controller's, its weights the
Rollout controller's while a Rollout is in flight.

Two writers of one field undo each other: a RecModel resync between a Rollout's route
patch and its status write would put the previous step's weights back. So the field has
one owner at a time, as with Argo Rollouts, whose controller alone sets the traffic
router's weights during a canary and records them in its status afterwards. While a
Rollout holds the weights, the RecModel controller still makes the route exist and lists
a backend per served version and target, but every backend the route already has keeps
its weight; a new backend gets the planned one (the Rollout's status for its versions).

Both writers patch with the resourceVersion they read (optimistic concurrency, answered
409 when the route changed meanwhile), so neither sends rules computed from a route the
other has just rewritten.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TypeVar

from recops_operator.clients.kubernetes import ConflictError, KubeClient, Obj
from recops_operator.controllers.apply import Outcome, drift, ensure
from recops_operator.resources import GRPCROUTES

log = logging.getLogger(__name__)
ATTEMPTS = 5  # a conflict means the other writer just moved; read again and redo
T = TypeVar("T")
# What a writer decides from the route it read: the patch to send (None: nothing to write)
# and what the call answers.
Plan = Callable[[Obj | None], tuple[Obj | None, T]]


def keep_weights(desired: Obj, observed: Obj) -> Obj:
    """``desired`` with each backend the observed route has at its observed weight."""
    now = {
        str(b.get("name")): b.get("weight", 1)
        for rule in (observed.get("spec") or {}).get("rules") or []
        for b in rule.get("backendRefs") or []
    }
    out = copy.deepcopy(desired)
    for rule in out["spec"]["rules"]:
        for backend in rule.get("backendRefs") or []:
            if backend["name"] in now:
                backend["weight"] = now[backend["name"]]
    return out


def with_precondition(patch: Obj, observed: Obj) -> Obj:
    """``patch`` refused with 409 unless the object is still at the version read."""
    meta = dict(patch.get("metadata") or {})
    meta["resourceVersion"] = observed["metadata"]["resourceVersion"]
    return {**patch, "metadata": meta}


async def patch_at_version(kube: KubeClient, namespace: str, name: str, plan: Plan[T]) -> T:
    """Read the route, let ``plan`` decide, patch at the version read; on 409 read again."""
    for _ in range(ATTEMPTS):
        route = await kube.get(GRPCROUTES, namespace, name)
        patch, answer = plan(route)
        if patch is None:
            return answer
        assert route is not None  # a plan patches only a route it read
        try:
            await kube.patch(GRPCROUTES, namespace, name, with_precondition(patch, route))
        except ConflictError:
            log.info("GRPCRoute %s/%s changed while writing it: reading it again", namespace, name)
            continue
        return answer
    raise ConflictError(409, "Conflict", f"GRPCRoute {namespace}/{name} kept changing")


async def apply_route(kube: KubeClient, desired: Obj, keep_observed_weights: bool) -> Outcome:
    """Create the route, or patch its drift; ``keep_observed_weights`` while a Rollout
    holds them."""
    meta = desired["metadata"]

    def plan(observed: Obj | None) -> tuple[Obj | None, Outcome | None]:
        if observed is None:
            return None, None  # created below
        want = keep_weights(desired, observed) if keep_observed_weights else desired
        patch = drift(want, observed)
        return (patch, "updated") if patch else (None, "unchanged")

    outcome = await patch_at_version(kube, meta["namespace"], meta["name"], plan)
    if outcome is None:
        _, outcome = await ensure(kube, desired)
    return outcome
