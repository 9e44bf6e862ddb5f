"""The operator's least-privilege RBAC rules, as data (the Helm chart renders these).

Every (group, resource, verb) the operator's client uses must be allowed here; a test runs
the operator against an emulated API server and checks each recorded call against them.
Kopf's own needs (watching the custom resources, peering, events) are listed with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recops_operator.api.base import GROUP


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def to_k8s(self) -> dict[str, Any]:
        return {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


RULES: tuple[Rule, ...] = (
    Rule(
        (GROUP,),
        ("recmodels", "trainingruns", "rollouts"),
        ("get", "list", "watch", "patch"),
        "Kopf watches them and patches finalizers and annotations; reconcilers read them",
    ),
    Rule(
        (GROUP,),
        ("recmodels/status", "trainingruns/status", "rollouts/status"),
        ("get", "patch"),
        "status is written through the status subresource",
    ),
    Rule((GROUP,), ("trainingruns",), ("create",), "a RecModel starts its TrainingRuns"),
    Rule(("ray.io",), ("rayjobs",), ("get", "create"), "training on KubeRay"),
    Rule(("batch",), ("jobs",), ("get", "create"), "compile Jobs and the training fallback"),
    Rule(("",), ("pods",), ("list",), "compile results come back as termination messages"),
    Rule(("",), ("configmaps",), ("get", "create"), "the training config"),
    Rule(("",), ("services",), ("get", "list", "create", "patch", "delete"), "serving"),
    Rule(("apps",), ("deployments",), ("get", "list", "create", "patch", "delete"), "serving"),
    Rule(
        ("autoscaling",),
        ("horizontalpodautoscalers",),
        ("get", "list", "create", "patch", "delete"),
        "serving autoscaling",
    ),
    Rule(
        ("monitoring.coreos.com",),
        ("servicemonitors",),
        ("get", "create", "patch"),
        "Prometheus scrapes the runtime",
    ),
    Rule(
        ("gateway.networking.k8s.io",),
        ("grpcroutes",),
        ("get", "create", "patch"),
        "traffic split between versions",
    ),
    Rule(
        ("networking.k8s.io",),
        ("networkpolicies",),
        ("get", "create", "patch"),
        "each RecModel's serving and training pods are fenced (render/network.py)",
    ),
    Rule(("", "events.k8s.io"), ("events",), ("create",), "Kopf posts Kubernetes events"),
    Rule(("",), ("namespaces",), ("list", "watch"), "Kopf follows namespaces it serves"),
    Rule(
        ("apiextensions.k8s.io",),
        ("customresourcedefinitions",),
        ("list", "watch"),
        "Kopf notices CRDs installed after it started (e.g. KubeRay)",
    ),
    Rule(
        ("kopf.dev",),
        ("clusterkopfpeerings", "kopfpeerings"),
        ("get", "list", "watch", "patch"),
        "peering: two replicas form a highly available pair",
    ),
)


# Resources without a namespace: a Role cannot grant them. An operator that watches named
# namespaces does without them: Kopf follows namespaces only for glob patterns, and without
# the CRD watch it notices CRDs installed later (KubeRay) at its next start.
CLUSTER_SCOPED = frozenset({"namespaces", "customresourcedefinitions", "clusterkopfpeerings"})


def namespaced_rules() -> tuple[Rule, ...]:
    """The rules a Role in each watched namespace grants (``watchNamespaces`` set)."""
    kept = []
    for rule in RULES:
        resources = tuple(r for r in rule.resources if r not in CLUSTER_SCOPED)
        if resources:
            kept.append(Rule(rule.api_groups, resources, rule.verbs, rule.why))
    return tuple(kept)


def allows(group: str, resource: str, verb: str) -> bool:
    return any(group in r.api_groups and resource in r.resources and verb in r.verbs for r in RULES)


def cluster_role(name: str = "recops-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "recops"}},
        "rules": [r.to_k8s() for r in RULES],
    }
