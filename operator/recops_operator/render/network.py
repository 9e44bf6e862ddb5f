"""NetworkPolicies of a RecModel: who reaches its serving pods, and where its training and
compile pods may connect.

Serving pods take the data ports (gRPC, HTTP) only from the namespaces the RecModel
allows (the Gateway's by default) and the metrics port only from the monitoring and the
operator's namespaces. Training and compile pods talk among themselves (Ray's ports), to
DNS, to MLflow and, when the data set is downloaded, to its host's port; the KubeRay
operator reaches the Ray dashboard (8265), which it polls for the job's status.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from recops_contracts.training import DatasetSource
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.render.common import (
    LABEL_COMPONENT,
    LABEL_RECMODEL,
    Obj,
    labels,
    metadata,
    object_name,
)
from recops_operator.render.serving import GRPC_PORT, HTTP_PORT, METRICS_PORT
from recops_operator.settings import OperatorSettings

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server
RAY_DASHBOARD_PORT = 8265
DNS_PORT = 53
# A NetworkPolicy cannot name a host, only addresses: the dataset's host outside the
# cluster is reached on its one port at any address (the rule that uses it names the port).
_ANYWHERE = "0.0.0.0/0"
# The components of the pods the training policy selects.
TRAINING_COMPONENTS = ("training", "compile")


def _namespace(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: name}}}


def _tcp(*ports: int) -> list[Obj]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _policy(namespace: str, recmodel: str, role: str, spec: Obj, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            object_name(recmodel, role), namespace, labels(recmodel, "network"), owner
        ),
        "spec": spec,
    }


def serving_namespaces(namespace: str, spec: RecModelSpec, settings: OperatorSettings) -> list[str]:
    """Namespaces allowed to call the serving ports: the RecModel's list, else the Gateway's."""
    return list(spec.network.serving_from_namespaces or [settings.gateway_namespace or namespace])


def render_serving_policy(
    namespace: str,
    recmodel: str,
    spec: RecModelSpec,
    settings: OperatorSettings,
    owner: Obj | None,
) -> Obj:
    metrics_from = sorted({settings.monitoring_namespace, settings.operator_namespace})
    return _policy(
        namespace,
        recmodel,
        "serving",
        {
            "podSelector": {"matchLabels": {LABEL_RECMODEL: recmodel, LABEL_COMPONENT: "serving"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_namespace(n) for n in serving_namespaces(namespace, spec, settings)],
                    "ports": _tcp(GRPC_PORT, HTTP_PORT),
                },
                {"from": [_namespace(n) for n in metrics_from], "ports": _tcp(METRICS_PORT)},
            ],
        },
        owner,
    )


def _in_cluster_namespace(host: str, namespace: str) -> str | None:
    """The namespace of a Service host name (``svc``, ``svc.ns``, ``svc.ns.svc[.cluster...]``),
    or None for a host outside the cluster."""
    parts = host.split(".")
    if len(parts) == 1:
        return namespace
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1]
    return None


def _egress_to(uri: str, namespace: str) -> Obj | None:
    """An egress rule to the server of ``uri``: its namespace when it is a Service, else
    any address on its port (the policy cannot name a host outside the cluster)."""
    parts = urlsplit(uri)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    peer_ns = _in_cluster_namespace(host, namespace)
    peer: Obj = _namespace(peer_ns) if peer_ns else {"ipBlock": {"cidr": _ANYWHERE}}
    return {"to": [peer], "ports": _tcp(port)}


def _downloads(dataset: DatasetSource) -> str | None:
    """The URL the training pod fetches, if any: the dataset's http(s) URI, or the
    GroupLens archive when neither a URI nor a prepared snapshot is given."""
    if dataset.uri:
        return dataset.uri if dataset.uri.startswith(("http://", "https://")) else None
    if dataset.prepared_dir or dataset.format.value in ("synthetic", "sasrec"):
        return None
    return "https://files.grouplens.org/"


def render_training_policy(
    namespace: str,
    recmodel: str,
    spec: RecModelSpec,
    settings: OperatorSettings,
    owner: Obj | None,
) -> Obj:
    own: Obj = {
        "podSelector": {
            "matchLabels": {LABEL_RECMODEL: recmodel},
            "matchExpressions": [
                {"key": LABEL_COMPONENT, "operator": "In", "values": list(TRAINING_COMPONENTS)}
            ],
        }
    }
    dns: Obj = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [
            {"protocol": "UDP", "port": DNS_PORT},
            {"protocol": "TCP", "port": DNS_PORT},
        ],
    }
    egress: list[Obj] = [{"to": [own]}, dns]
    mlflow_uri = spec.mlflow.tracking_uri or settings.mlflow_tracking_uri
    for uri in (mlflow_uri, _downloads(spec.dataset)):
        rule = _egress_to(uri, namespace) if uri else None
        if rule is not None and rule not in egress:
            egress.append(rule)
    return _policy(
        namespace,
        recmodel,
        "training",
        {
            "podSelector": own["podSelector"],
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [own]},
                {
                    "from": [_namespace(settings.kuberay_namespace)],
                    "ports": _tcp(RAY_DASHBOARD_PORT),
                },
            ],
            "egress": egress,
        },
        owner,
    )


def render_network_policies(
    namespace: str,
    recmodel: str,
    spec: RecModelSpec,
    settings: OperatorSettings,
    owner: Obj | None,
) -> list[Obj]:
    """The RecModel's policies (none when the operator setting network_policies is off)."""
    if not settings.network_policies:
        return []
    return [
        render_serving_policy(namespace, recmodel, spec, settings, owner),
        render_training_policy(namespace, recmodel, spec, settings, owner),
    ]
