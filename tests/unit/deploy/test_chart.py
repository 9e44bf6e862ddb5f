"""The Helm chart, rendered and linted offline (helm-python-sdk) for the default values and for
a GPU cluster; every object it renders is one the API server would accept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from recops_testkit.schemas import validate_object

Obj = dict[str, Any]
CHART = Path(__file__).resolve().parents[3] / "charts" / "recops"


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def operator_container(objects: list[Obj]) -> Obj:
    (deployment,) = by_kind(objects, "Deployment")
    container: Obj = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("values_name", ["default", "gpu"])
def test_chart_lints_clean(helm: Any, gpu_values: Obj, values_name: str) -> None:
    values = gpu_values if values_name == "gpu" else None
    report = helm.lint(str(CHART), values, strict=True, kube_version="v1.32.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("values_name", ["default", "gpu"])
def test_every_rendered_object_validates(
    render_chart: Callable[..., list[Obj]],
    gpu_values: Obj,
    values_name: str,
) -> None:
    objects = render_chart(gpu_values if values_name == "gpu" else None)
    kinds = {o["kind"] for o in objects}
    # The GPU values watch one namespace: a Role there, no cluster-wide grant (issue 27).
    rbac = (
        {"Role", "RoleBinding"} if values_name == "gpu" else {"ClusterRole", "ClusterRoleBinding"}
    )
    assert rbac <= kinds
    assert {
        "Deployment",
        "ServiceAccount",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    } <= kinds
    for obj in objects:
        validate_object(obj)


def test_chart_crds_are_validated_too(chart: Any) -> None:
    crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    names = {c["metadata"]["name"] for c in crds}
    assert {"recmodels.recops.io", "trainingruns.recops.io", "rollouts.recops.io"} <= names
    for crd in crds:
        validate_object(crd)


def test_chart_ships_the_generated_crds_and_rbac(repo_root: Path) -> None:
    from recops_operator.chartgen import check_chart_files

    stale = check_chart_files(CHART)
    assert not stale, f"charts/recops is out of date ({stale}): run `recops crds`"
    for crd in (repo_root / "crds").glob("*.yaml"):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text()


def test_crds_check_notices_a_stale_or_stray_chart_file(tmp_path: Path) -> None:
    import shutil

    from recops_operator.chartgen import check_chart_files, write_chart_files

    chart = tmp_path / "recops"
    shutil.copytree(CHART, chart)
    rules = chart / "files" / "rbac-rules.yaml"
    rules.write_text(rules.read_text().replace("patch]", "delete]"))
    (chart / "crds" / "recops.io_oldthings.yaml").write_text("kind: CustomResourceDefinition\n")
    (chart / "crds" / "recops.io_rollouts.yaml").unlink()
    assert sorted(check_chart_files(chart)) == [
        "crds/recops.io_oldthings.yaml",
        "crds/recops.io_rollouts.yaml",
        "files/rbac-rules.yaml",
    ]
    write_chart_files(chart)
    assert check_chart_files(chart) == []
    assert not (chart / "crds" / "recops.io_oldthings.yaml").exists()


def test_cluster_role_grants_exactly_the_operators_rules(
    render_chart: Callable[..., list[Obj]],
) -> None:
    from recops_operator import rbac

    (role,) = by_kind(render_chart(), "ClusterRole")
    assert role["rules"] == rbac.cluster_role()["rules"]
    (binding,) = by_kind(render_chart(), "ClusterRoleBinding")
    (account,) = by_kind(render_chart(), "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "recops-system",
        }
    ]
    (deployment,) = by_kind(render_chart(), "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        == (account["metadata"]["name"])
    )


@pytest.mark.parametrize("values_name", ["default", "gpu"])
def test_operator_reads_its_settings_from_the_rendered_env(
    render_chart: Callable[..., list[Obj]],
    gpu_values: Obj,
    monkeypatch: pytest.MonkeyPatch,
    values_name: str,
) -> None:
    """The Deployment's RECOPS_OPERATOR_* variables parse into the operator's own settings."""
    from recops_operator.settings import OperatorSettings

    values = gpu_values if values_name == "gpu" else {}
    objects = render_chart(values)
    container = operator_container(objects)
    for name in list(__import__("os").environ):
        if name.startswith("RECOPS_OPERATOR_"):
            monkeypatch.delenv(name)
    for var in container["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    for name in ("RECOPS_ROLLOUT_PROMETHEUS_URL", "RECOPS_ROLLOUT_QUERY_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = OperatorSettings()
    # Rollout analysis and drift signals query the Prometheus the chart's values name.
    values_url = yaml.safe_load((CHART / "values.yaml").read_text())["prometheus"]["url"]
    assert settings.prometheus_url == values_url
    assert settings.runtime_image.startswith("ghcr.io/recops/recops-runtime:")
    assert settings.image.startswith("ghcr.io/recops/recops-trainer:")
    assert settings.standalone is (values_name == "default")
    if values_name == "gpu":
        assert settings.namespaces == ["recommenders"]
        assert settings.gpu_runtime_image == "ghcr.io/recops/recops-runtime-gpu:0.1.0-cuda12"
        assert settings.gpu_node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert [t.value for t in settings.gpu_tolerations] == ["present"]
        assert settings.gateway_namespace == "gateway-system"
    # The liveness endpoint the operator serves is the one the probes call.
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
    assert settings.liveness_endpoint == f"http://0.0.0.0:{port}/healthz"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_service_monitor_scrapes_the_services_the_operator_renders(
    render_chart: Callable[..., list[Obj]], helm: Any
) -> None:
    from recops_operator.api.recmodel import DeploymentTarget
    from recops_operator.api.targets import TargetName
    from recops_operator.render.serving import ServedVersion, render_service

    served = ServedVersion(
        "recommenders", "movies", "4", DeploymentTarget(name=TargetName.CPU_OPENVINO)
    )
    service = render_service(served, owner=None)
    for values, namespaces in (
        ({}, None),
        ({"operator": {"watchNamespaces": ["recommenders"]}}, ["recommenders"]),
    ):
        (monitor,) = by_kind(render_chart(values), "ServiceMonitor")
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
        if namespaces is None:
            assert monitor["spec"]["namespaceSelector"] == {"any": True}
        else:
            assert monitor["spec"]["namespaceSelector"] == {"matchNames": namespaces}
    # Letting the operator add per-RecModel monitors as well would scrape every pod twice.
    with pytest.raises(helm.HelmError, match="twice"):
        render_chart({"runtime": {"serviceMonitors": True}})
    assert not by_kind(
        render_chart(
            {
                "runtime": {"serviceMonitors": True},
                "prometheus": {"serviceMonitor": {"enabled": False}},
            }
        ),
        "ServiceMonitor",
    )


def test_two_replicas_use_kopf_peering(render_chart: Callable[..., list[Obj]]) -> None:
    cluster_wide = render_chart({"operator": {"replicas": 2}})
    (peering,) = by_kind(cluster_wide, "ClusterKopfPeering")
    env = {v["name"]: v.get("value") for v in operator_container(cluster_wide)["env"]}
    assert env["RECOPS_OPERATOR_STANDALONE"] == "false"
    assert env["RECOPS_OPERATOR_PEERING_NAME"] == peering["metadata"]["name"]

    scoped = render_chart({"operator": {"replicas": 2, "watchNamespaces": ["a", "b"]}})
    assert not by_kind(scoped, "ClusterKopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in by_kind(scoped, "KopfPeering")) == ["a", "b"]

    single = render_chart()
    assert not by_kind(single, "ClusterKopfPeering") and not by_kind(single, "KopfPeering")


@pytest.mark.parametrize("values_name", ["default", "gpu"])
def test_pods_run_non_root_and_read_only(
    render_chart: Callable[..., list[Obj]], gpu_values: Obj, values_name: str
) -> None:
    objects = render_chart(gpu_values if values_name == "gpu" else None)
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]


def test_dashboards_ship_as_configmaps_for_grafanas_sidecar(
    render_chart: Callable[..., list[Obj]],
) -> None:
    maps = [
        m for m in by_kind(render_chart(), "ConfigMap") if "-dashboard-" in m["metadata"]["name"]
    ]
    shipped = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "recops"
        ((key, text),) = cm["data"].items()
        shipped[key] = json.loads(text)
    files = {
        f"recops-{p.stem}.json": json.loads(p.read_text())
        for p in (CHART / "files" / "dashboards").glob("*.json")
    }
    assert shipped == files
    assert set(files) == {"recops-serving.json", "recops-rollouts.json", "recops-training.json"}
    assert not [
        m
        for m in by_kind(render_chart({"grafana": {"dashboards": {"enabled": False}}}), "ConfigMap")
        if "-dashboard-" in m["metadata"]["name"]
    ]


def test_artifact_claims_are_created_where_asked(render_chart: Callable[..., list[Obj]]) -> None:
    claims = by_kind(
        render_chart({"artifacts": {"createIn": ["team-a", "team-b"]}}), "PersistentVolumeClaim"
    )
    assert [(c["metadata"]["namespace"], c["metadata"]["name"]) for c in claims] == [
        ("team-a", "recops-artifacts"),
        ("team-b", "recops-artifacts"),
    ]
    assert all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in claims)


def test_a_feedback_claim_reaches_the_operator_and_is_created_where_asked(
    render_chart: Callable[..., list[Obj]],
) -> None:
    objs = render_chart({"feedback": {"claimName": "recops-feedback", "createIn": ["team-a"]}})
    claims = [c for c in by_kind(objs, "PersistentVolumeClaim")]
    assert [(c["metadata"]["namespace"], c["metadata"]["name"]) for c in claims] == [
        ("team-a", "recops-feedback")
    ]
    (operator,) = by_kind(objs, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["RECOPS_OPERATOR_FEEDBACK_CLAIM"] == "recops-feedback"
    # Off by default: no claim, no variable (the operator then mounts no feedback volume).
    default = render_chart({"feedback": {"createIn": ["team-a"]}})
    assert not by_kind(default, "PersistentVolumeClaim")
    (operator,) = by_kind(default, "Deployment")
    names = {e["name"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "RECOPS_OPERATOR_FEEDBACK_CLAIM" not in names


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"operator": {"replicas": 0}}, "/operator/replicas"),
        ({"operator": {"replicas": "two"}}, "/operator/replicas"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "/operator/watchNamespaces/0"),
        ({"operator": {"logFormat": "xml"}}, "/operator/logFormat"),
        ({"operator": {"healthPort": 70000}}, "/operator/healthPort"),
        ({"images": {"operator": {"tag": "has space"}}}, "/images/operator/tag"),
        ({"images": {"runtimeGpu": {"digest": "md5:abc"}}}, "/images/runtimeGpu/digest"),
        ({"mlflow": {"trackingUri": "mlflow:5000"}}, "/mlflow/trackingUri"),
        (
            {"prometheus": {"rules": {"errorRateThreshold": 5}}},
            "/prometheus/rules/errorRateThreshold",
        ),
        (
            {"prometheus": {"serviceMonitor": {"interval": "often"}}},
            "/prometheus/serviceMonitor/interval",
        ),
        (
            {"runtime": {"gpu": {"tolerations": [{"operator": "Maybe"}]}}},
            "/runtime/gpu/tolerations/0/operator",
        ),
        ({"artifacts": {"size": "lots"}}, "/artifacts/size"),
        ({"feedback": {"claimName": "Not_A_Name"}}, "/feedback/claimName"),
        ({"imagePullPolicy": "Sometimes"}, "/imagePullPolicy"),
        ({"operatr": {"replicas": 1}}, "operatr"),
    ],
)
def test_values_schema_rejects_bad_values_naming_the_field(
    chart: Any, helm: Any, values: Obj, field: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert field in str(err.value)
    with pytest.raises(helm.HelmError):
        chart.render(values=values, name="recops", namespace="recops-system")


def test_values_schema_accepts_every_shipped_values_file(chart: Any, repo_root: Path) -> None:
    chart.validate_schema(yaml.safe_load((CHART / "ci" / "gpu-values.yaml").read_text()))
    app = yaml.safe_load((repo_root / "examples/gitops/applications/recops.yaml").read_text())
    chart.validate_schema(app["spec"]["source"]["helm"]["valuesObject"])
