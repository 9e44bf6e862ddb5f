"""Issue 27 on the chart: RBAC scoped to the watched namespaces (finding 7), the operator's
NetworkPolicy, and Pod Security "restricted" for every pod it renders (findings 6/13),
under the default, GPU and highly available values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recops_operator import rbac
from recops_testkit.pod_security import hardening_problems, pod_templates, restricted_problems
from recops_testkit.schemas import validate_object

Obj = dict[str, Any]
HA = {"operator": {"replicas": 2}}


def _values(name: str, gpu_values: Obj) -> Obj | None:
    return {"default": None, "gpu": gpu_values, "ha": HA}[name]


def _kinds(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("values_name", ["default", "gpu", "ha"])
def test_every_chart_pod_passes_the_restricted_standard(
    render_chart: Callable[..., list[Obj]], gpu_values: Obj, values_name: str
) -> None:
    objects = render_chart(_values(values_name, gpu_values))
    pods = [wp for o in objects for wp in pod_templates(o)]
    assert pods
    # The operator's pod calls the API server: its token stays.
    problems = {w: restricted_problems(p) + hardening_problems(p, calls_api=True) for w, p in pods}
    assert {w: p for w, p in problems.items() if p} == {}


def test_watching_the_whole_cluster_grants_a_cluster_role(
    render_chart: Callable[..., list[Obj]],
) -> None:
    objects = render_chart()
    assert not _kinds(objects, "Role") and not _kinds(objects, "RoleBinding")
    (role,) = _kinds(objects, "ClusterRole")
    assert role["rules"] == [r.to_k8s() for r in rbac.RULES]
    assert len(_kinds(objects, "ClusterRoleBinding")) == 1


def test_watching_namespaces_grants_a_role_in_each_and_nothing_cluster_wide(
    render_chart: Callable[..., list[Obj]],
) -> None:
    watched = ["team-a", "team-b"]
    objects = render_chart({"operator": {"watchNamespaces": watched}})
    assert not _kinds(objects, "ClusterRole") and not _kinds(objects, "ClusterRoleBinding")
    roles, bindings = _kinds(objects, "Role"), _kinds(objects, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == watched
    assert sorted(b["metadata"]["namespace"] for b in bindings) == watched
    for role in roles:
        validate_object(role)
        assert role["rules"] == [r.to_k8s() for r in rbac.namespaced_rules()]
        granted = {res for rule in role["rules"] for res in rule["resources"]}
        assert not granted & rbac.CLUSTER_SCOPED
    for binding in bindings:
        validate_object(binding)
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "recops-system"


def test_namespaced_rules_keep_every_namespaced_grant() -> None:
    namespaced = {
        (g, res, v)
        for r in rbac.RULES
        for g in r.api_groups
        for res in r.resources
        for v in r.verbs
        if res not in rbac.CLUSTER_SCOPED
    }
    kept = {
        (g, res, v)
        for r in rbac.namespaced_rules()
        for g in r.api_groups
        for res in r.resources
        for v in r.verbs
    }
    assert kept == namespaced


@pytest.mark.parametrize("enabled", [True, False])
def test_the_operator_takes_connections_only_on_its_health_port(
    render_chart: Callable[..., list[Obj]], enabled: bool
) -> None:
    objects = render_chart({"security": {"networkPolicies": enabled}})
    policies = _kinds(objects, "NetworkPolicy")
    if not enabled:
        assert policies == []
        return
    (policy,) = policies
    validate_object(policy)
    (deployment,) = _kinds(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8081}]}]


def test_the_guardrail_settings_reach_the_operator(
    render_chart: Callable[..., list[Obj]],
) -> None:
    objects = render_chart({"security": {"allowedImagePrefixes": ["registry.corp/ml/"]}})
    (deployment,) = _kinds(objects, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["RECOPS_OPERATOR_ALLOWED_IMAGE_PREFIXES"] == '["registry.corp/ml/"]'
    assert env["RECOPS_OPERATOR_OPERATOR_NAMESPACE"] == "recops-system"
    assert env["RECOPS_OPERATOR_MAX_DOWNLOAD_BYTES"] == "4294967296"
