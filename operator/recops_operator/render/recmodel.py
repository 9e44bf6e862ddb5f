"""Every serving object a RecModel's plan calls for: per served version and target a
Deployment, a Service and an HPA; per target the stable and canary Services; and, once
something is served, the ServiceMonitor and the GRPCRoute. The RecModel's NetworkPolicies
come first, so that its pods never run unfenced."""

from __future__ import annotations

from recops_operator.api.recmodel import RecModelSpec
from recops_operator.render.common import Obj
from recops_operator.render.network import render_network_policies
from recops_operator.render.serving import (
    ServedVersion,
    render_deployment,
    render_grpc_route,
    render_hpa,
    render_role_services,
    render_service,
    render_service_monitor,
)
from recops_operator.settings import OperatorSettings


def render_serving(
    settings: OperatorSettings,
    owner: Obj,
    spec: RecModelSpec,
    served: list[ServedVersion],
    roles: dict[str, tuple[str, str]],
    weights: dict[str, int],
) -> list[Obj]:
    """The objects of RecModel ``owner``: ``roles`` are each target's (stable, canary)
    versions, ``weights`` the route's weight per version."""
    namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
    objs: list[Obj] = render_network_policies(namespace, name, spec, settings, owner)
    for sv in served:
        objs += [render_deployment(sv, settings, owner), render_service(sv, owner)]
        hpa = render_hpa(sv, owner)
        if hpa is not None:
            objs.append(hpa)
    by_name = {t.name.value: t for t in spec.targets}
    for target, (stable, canary) in roles.items():
        objs += render_role_services(namespace, name, by_name[target], stable, canary, owner)
    if served:
        if settings.service_monitors:
            objs.append(render_service_monitor(namespace, name, owner))
        served_on: dict[str, set[str]] = {}
        for sv in served:
            served_on.setdefault(sv.target.name.value, set()).add(sv.version)
        targets = [t for t in spec.targets if t.name.value in served_on]
        objs.append(
            render_grpc_route(namespace, name, targets, weights, settings, owner, served_on)
        )
    return objs
