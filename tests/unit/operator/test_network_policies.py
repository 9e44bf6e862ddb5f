"""Issue 27: the NetworkPolicies the operator renders per RecModel (and the dry run
prints): serving ports from the allowed namespaces only, metrics from monitoring and the
operator; training pods only among themselves, to DNS, MLflow and the data set's host;
the Ray dashboard (finding 5) only from the run's pods and the KubeRay operator."""

from __future__ import annotations

from typing import Any

from recops_operator.api.recmodel import RecModelSpec
from recops_operator.dry_run import render_all
from recops_operator.render.network import render_network_policies
from recops_operator.settings import OperatorSettings
from recops_testkit.schemas import validate_object

Obj = dict[str, Any]
SPEC: Obj = {
    "dataset": {"format": "movielens-1m"},
    "training": {"storageClaim": "recops-artifacts"},
    "targets": [{"name": "cpu-onnxruntime"}],
}


def _policies(spec: Obj = SPEC, **settings: Any) -> dict[str, Obj]:
    objs = render_network_policies(
        "ml", "movies", RecModelSpec.model_validate(spec), OperatorSettings(**settings), None
    )
    for obj in objs:
        validate_object(obj)
    return {o["metadata"]["name"]: o["spec"] for o in objs}


def _namespaces(peers: list[Obj]) -> set[str]:
    return {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers}


def test_serving_ports_take_the_gateway_namespace_and_metrics_take_monitoring() -> None:
    serving = _policies(gateway_namespace="gateway-system")["movies-serving"]
    data, metrics = serving["ingress"]
    assert _namespaces(data["from"]) == {"gateway-system"}
    assert {p["port"] for p in data["ports"]} == {8500, 8080}
    assert _namespaces(metrics["from"]) == {"monitoring", "recops-system"}
    assert [p["port"] for p in metrics["ports"]] == [9090]
    assert serving["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "serving"


def test_without_a_gateway_namespace_only_the_recmodels_own_namespace_calls_it() -> None:
    data = _policies()["movies-serving"]["ingress"][0]
    assert _namespaces(data["from"]) == {"ml"}


def test_a_recmodel_names_the_namespaces_its_clients_run_in() -> None:
    spec = {**SPEC, "network": {"servingFromNamespaces": ["shop", "search"]}}
    data = _policies(spec)["movies-serving"]["ingress"][0]
    assert _namespaces(data["from"]) == {"shop", "search"}


def test_training_pods_talk_among_themselves_to_dns_mlflow_and_the_archive() -> None:
    training = _policies(mlflow_tracking_uri="http://mlflow.mlflow.svc.cluster.local:5000")[
        "movies-training"
    ]
    own = training["podSelector"]
    assert own["matchExpressions"][0]["values"] == ["training", "compile"]
    among, dashboard = training["ingress"]
    assert among == {"from": [{"podSelector": own}]}
    assert _namespaces(dashboard["from"]) == {"kuberay-system"}
    assert dashboard["ports"] == [{"protocol": "TCP", "port": 8265}]
    to_self, dns, mlflow, archive = training["egress"]
    assert to_self == {"to": [{"podSelector": own}]}
    assert {p["port"] for p in dns["ports"]} == {53}
    assert _namespaces(mlflow["to"]) == {"mlflow"}
    assert mlflow["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert archive["ports"] == [{"protocol": "TCP", "port": 443}]


def test_a_prepared_or_synthetic_data_set_opens_no_download_port() -> None:
    spec = {**SPEC, "dataset": {"format": "synthetic"}}
    egress = _policies(spec)["movies-training"]["egress"]
    assert len(egress) == 3  # themselves, DNS, MLflow


def test_the_setting_turns_them_off() -> None:
    assert _policies(network_policies=False) == {}


def test_the_dry_run_prints_them_and_every_training_pod_carries_the_selected_labels() -> None:
    recmodel = {"kind": "RecModel", "metadata": {"name": "movies", "namespace": "ml"}, "spec": SPEC}
    objs = render_all(OperatorSettings(), recmodel)
    policies = {o["metadata"]["name"]: o for o in objs if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"movies-serving", "movies-training"}
    (rayjob,) = [o for o in objs if o["kind"] == "RayJob"]
    spec = rayjob["spec"]
    cluster = spec["rayClusterSpec"]
    templates = [
        cluster["headGroupSpec"]["template"],
        *(g["template"] for g in cluster["workerGroupSpecs"]),
        spec["submitterPodTemplate"],
    ]
    for template in templates:
        pod_labels = template["metadata"]["labels"]
        assert pod_labels["recops.io/recmodel"] == "movies"
        assert pod_labels["app.kubernetes.io/component"] == "training"
    # The dashboard stays on the pod's address (KubeRay's submitter and operator call it)
    # and the training policy fences it.
    assert cluster["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0"
