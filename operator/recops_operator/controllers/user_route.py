"""A user's own GRPCRoute, steered through the RecModel's stable and canary Services."""

from __future__ import annotations

import logging

from recops_operator.api.rollout import Weights
from recops_operator.clients.kubernetes import ConflictError
from recops_operator.controllers.context import OperatorContext
from recops_operator.controllers.route import ATTEMPTS, with_precondition
from recops_operator.render.serving import GRPC_PORT
from recops_operator.render.traffic import role_backends, route_weights
from recops_operator.resources import GRPCROUTES

log = logging.getLogger(__name__)


async def steer_user_route(
    ctx: OperatorContext,
    namespace: str,
    recmodel: str,
    route_name: str,
    targets: list[str],
    weights: Weights,
) -> str | None:
    """Set the role backends of a user's GRPCRoute to ``weights``; why not, if it could not.

    Only the weights of ``<recmodel>-<target>-stable`` and ``-canary`` backends change;
    the route itself (parents, matches, other backends) stays the user's.
    """
    roles = role_backends(recmodel, targets)
    wanted = ", ".join(f"{n} (port {GRPC_PORT})" for n in roles)
    for _ in range(ATTEMPTS):
        route = await ctx.kube.get(GRPCROUTES, namespace, route_name)
        if route is None:
            return (
                f"GRPCRoute {route_name} (trafficRouting.grpcRoute) does not exist in "
                f"{namespace}; create it with the backendRefs {wanted}"
            )
        steered = route_weights(route, roles, weights)
        if not steered.found:
            return f"GRPCRoute {route_name} routes to none of {wanted}; add them to its backendRefs"
        if steered.missing_candidate and weights.candidate > 0:
            return (
                f"GRPCRoute {route_name} has rules without a canary backend "
                f"(rules {steered.missing_candidate}); list the -canary Service beside the "
                "-stable one"
            )
        if not steered.changed:
            return None
        patch = with_precondition({"spec": {"rules": steered.rules}}, route)
        try:
            await ctx.kube.patch(GRPCROUTES, namespace, route_name, patch)
        except ConflictError:
            continue  # the user (or their GitOps tool) edited it meanwhile: read it again
        log.info(
            "GRPCRoute %s/%s: stable=%d canary=%d",
            namespace,
            route_name,
            weights.stable,
            weights.candidate,
        )
        return None
    raise ConflictError(409, "Conflict", f"GRPCRoute {namespace}/{route_name} kept changing")
