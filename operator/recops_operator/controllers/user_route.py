"""A user's own GRPCRoute, steered through the RecModel's stable and canary Services."""

from __future__ import annotations

import logging

from recops_operator.api.rollout import Weights
from recops_operator.clients.kubernetes import Obj
from recops_operator.controllers.context import OperatorContext
from recops_operator.controllers.route import patch_at_version
from recops_operator.render.serving import GRPC_PORT
from recops_operator.render.traffic import role_backends, route_weights

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

    def plan(route: Obj | None) -> tuple[Obj | None, str | None]:
        if route is None:
            return None, (
                f"GRPCRoute {route_name} (trafficRouting.grpcRoute) does not exist in "
                f"{namespace}; create it with the backendRefs {wanted}"
            )
        steered = route_weights(route, roles, weights)
        if not steered.found:
            return None, (
                f"GRPCRoute {route_name} routes to none of {wanted}; add them to its backendRefs"
            )
        if steered.missing_candidate and weights.candidate > 0:
            return None, (
                f"GRPCRoute {route_name} has rules without a canary backend "
                f"(rules {steered.missing_candidate}); list the -canary Service beside the "
                "-stable one"
            )
        if not steered.changed:
            return None, None
        log.info(
            "GRPCRoute %s/%s: stable=%d canary=%d",
            namespace,
            route_name,
            weights.stable,
            weights.candidate,
        )
        return {"spec": {"rules": steered.rules}}, None

    # The user (or their GitOps tool) may edit the route meanwhile: the patch is at the
    # version read, and read again on a conflict.
    return await patch_at_version(ctx.kube, namespace, route_name, plan)
