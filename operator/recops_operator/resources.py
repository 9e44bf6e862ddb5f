"""Every Kubernetes resource the operator reads or writes, in one table.

The client addresses objects only through these entries, and the RBAC rules are
checked against them, so a resource used in code but missing from RBAC fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from recops_operator.api.base import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    """A REST resource: API group, version, plural name and whether it lives in a namespace."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection, or of one object when ``name`` is given."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            prefix = f"{prefix}/namespaces/{namespace}"
        path = f"{prefix}/{self.plural}"
        return f"{path}/{name}" if name is not None else path


RECMODELS = Resource(GROUP, VERSION, "recmodels", "RecModel")
TRAININGRUNS = Resource(GROUP, VERSION, "trainingruns", "TrainingRun")
ROLLOUTS = Resource(GROUP, VERSION, "rollouts", "Rollout")

RAYJOBS = Resource("ray.io", "v1", "rayjobs", "RayJob")
JOBS = Resource("batch", "v1", "jobs", "Job")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
EVENTS = Resource("", "v1", "events", "Event")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
SERVICEMONITORS = Resource("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor")
GRPCROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute")
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
CRDS = Resource(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
)

BY_KIND: dict[str, Resource] = {
    r.kind: r
    for r in (
        RECMODELS,
        TRAININGRUNS,
        ROLLOUTS,
        RAYJOBS,
        JOBS,
        CONFIGMAPS,
        PODS,
        SERVICES,
        EVENTS,
        DEPLOYMENTS,
        HPAS,
        SERVICEMONITORS,
        GRPCROUTES,
        NETWORKPOLICIES,
    )
}


def resource_of(obj: dict[str, object]) -> Resource:
    """The resource of a rendered object, from its ``kind``."""
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in BY_KIND:
        raise ValueError(f"kind {kind!r} is not one the operator manages")
    return BY_KIND[kind]
