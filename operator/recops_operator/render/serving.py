"""Serving objects of a RecModel: per version and target a Deployment, Service and HPA;
per target a stable and a canary Service that follow the versions; per RecModel a
ServiceMonitor and a GRPCRoute that splits traffic between versions."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from recops_contracts.drift import DriftThresholds
from recops_operator.api.recmodel import DeploymentTarget
from recops_operator.render.common import (
    FEEDBACK_MOUNT,
    LABEL_COMPONENT,
    LABEL_RECMODEL,
    LABEL_TARGET,
    LABEL_VERSION,
    Obj,
    feedback_dir,
    labels,
    metadata,
    object_name,
    restricted_pod_security_context,
    restricted_security_context,
)
from recops_operator.render.compile import ARTIFACTS_MOUNT, engine_dir, gpu_placement
from recops_operator.settings import OperatorSettings

GRPC_PORT = 8500
HTTP_PORT = 8080
METRICS_PORT = 9090
TARGET_HEADER = "x-recops-target"
# Clients name the RecModel they ask in this header. Several RecModels' routes attach to one
# Gateway, for the same gRPC service and methods; the Gateway API gives a request to the rule
# with the most header matches, then to the oldest route, so a rule without this match
# would take every model's requests.
MODEL_HEADER = "x-recops-model"
# On SIGTERM a server turns not-ready and keeps serving for DRAIN_DELAY_S: Kubernetes removes
# the pod's endpoints while (not before) it signals the container, and the gateway learns of
# the removal later still. Then it finishes its requests within DRAIN_TIMEOUT_S; the
# supervisor waits both plus 30 s for its processes before killing them, and the grace
# period covers that, so the kubelet never kills a pod that is still draining.
DRAIN_DELAY_S = 10
DRAIN_TIMEOUT_S = 30
TERMINATION_GRACE_S = DRAIN_DELAY_S + DRAIN_TIMEOUT_S + 30


@dataclass(frozen=True)
class ServedVersion:
    """One version of a RecModel to run on one target."""

    namespace: str
    recmodel: str
    version: str
    target: DeploymentTarget
    # The RecModel's retraining.drift.statistics; None: the runtime's defaults.
    drift: DriftThresholds | None = None

    @property
    def name(self) -> str:
        return object_name(self.recmodel, self.version, self.target.name.value)

    @property
    def selector(self) -> dict[str, str]:
        return {
            LABEL_RECMODEL: self.recmodel,
            LABEL_VERSION: self.version,
            LABEL_TARGET: self.target.name.value,
        }

    @property
    def grpc_address(self) -> str:
        return f"{self.name}.{self.namespace}.svc:{GRPC_PORT}"


def _labels(served: ServedVersion) -> dict[str, str]:
    return labels(
        served.recmodel,
        "serving",
        **{LABEL_VERSION: served.version, LABEL_TARGET: served.target.name.value},
    )


MAX_PROCESSES = 8


def cpu_cores(quantity: str) -> float:
    """Cores in a CPU quantity ("2", "1.5", "500m")."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def serve_args(served: ServedVersion) -> list[str]:
    """The ``recops serve`` command line (flags are the runtime's contract).

    A CPU target runs one server process per requested core (at most 8), each with one
    single-threaded engine worker: one Python process is bound by its interpreter lock
    well before its cores are busy, and without a CPU limit the pod sees every core of
    its node, so sizing by the node would oversubscribe the cores the scheduler granted.
    A GPU target runs one process: the device is the shared resource there.
    """
    t = served.target
    engine = engine_dir(served.namespace, served.recmodel, served.version, t.name.value)
    args = [
        "recops",
        "serve",
        "--engine",
        f"{served.version}={engine}",
        "--grpc-port",
        str(GRPC_PORT),
        "--http-port",
        str(HTTP_PORT),
        "--metrics-port",
        str(METRICS_PORT),
        "--max-batch-size",
        str(t.max_batch_size),
        "--max-batch-delay-ms",
        f"{t.max_batch_delay_ms:g}",
        "--drain-delay-s",
        str(DRAIN_DELAY_S),
        "--drain-timeout-s",
        str(DRAIN_TIMEOUT_S),
        # Clients in a cluster are built from the published .proto; reflection on the port
        # the gateway exposes would only describe the service to whoever can reach it.
        "--no-reflection",
    ]
    if t.name.needs_gpu:
        args += ["--processes", "1"]
    else:
        processes = min(MAX_PROCESSES, max(1, math.ceil(cpu_cores(t.resources.cpu))))
        args += ["--processes", str(processes), "--engine-workers", "1", "--engine-threads", "1"]
    if served.drift is not None and served.drift != DriftThresholds():
        args += ["--drift", json.dumps(served.drift.to_wire(), separators=(",", ":"))]
    return args


def render_deployment(served: ServedVersion, settings: OperatorSettings, owner: Obj | None) -> Obj:
    t = served.target
    res = t.resources
    # Logs only: the root filesystem is read-only and /tmp is memory-backed.
    resources: Obj = {
        "requests": {"cpu": res.cpu, "memory": res.memory, "ephemeral-storage": "64Mi"},
        "limits": {"memory": res.memory, "ephemeral-storage": "512Mi"},
    }
    if res.cpu_limit:
        resources["limits"]["cpu"] = res.cpu_limit
    if res.gpu:
        resources["requests"]["nvidia.com/gpu"] = str(res.gpu)
        resources["limits"]["nvidia.com/gpu"] = str(res.gpu)
    # Kubernetes' native gRPC probe calls grpc.health.v1.Health/Check on the serving port.
    grpc_probe = {"grpc": {"port": GRPC_PORT}}
    container: Obj = {
        "name": "runtime",
        "image": settings.gpu_runtime_image if t.name.needs_gpu else settings.runtime_image,
        "command": serve_args(served),
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": resources,
        "startupProbe": {**grpc_probe, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**grpc_probe, "periodSeconds": 5, "failureThreshold": 2},
        # Liveness asks only whether the process answers (/healthz on the HTTP port, off the
        # request path), with a generous timeout: a pod saturated with requests fails
        # readiness and sheds traffic, but is not restarted for it.
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "volumeMounts": [
            {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # nosec B108: the pod's own emptyDir
        ],
        "securityContext": restricted_security_context(),
    }
    pod: Obj = {
        "containers": [container],
        "securityContext": restricted_pod_security_context(),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "volumes": [
            {
                "name": "artifacts",
                "persistentVolumeClaim": {"claimName": settings.artifacts_claim, "readOnly": True},
            },
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    if settings.feedback_claim:
        # One folder per pod: a feedback log belongs to one server process.
        folder = f"{feedback_dir(served.namespace, served.recmodel)}/$(POD_NAME)"
        container["command"] = [*container["command"], "--feedback-log", folder]
        pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
        container.setdefault("env", []).append({"name": "POD_NAME", "valueFrom": pod_name})
        container["volumeMounts"].append({"name": "feedback", "mountPath": FEEDBACK_MOUNT})
        pod["volumes"].append(
            {"name": "feedback", "persistentVolumeClaim": {"claimName": settings.feedback_claim}}
        )
    selector, tols = gpu_placement(t, settings)
    if selector:
        pod["nodeSelector"] = selector
    if tols:
        pod["tolerations"] = tols
    spec: Obj = {
        "selector": {"matchLabels": served.selector},
        "template": {"metadata": {"labels": _labels(served)}, "spec": pod},
    }
    # With autoscaling the HPA owns the replica count; setting it here would fight the HPA.
    if not t.autoscaling.enabled:
        spec["replicas"] = t.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(served.name, served.namespace, _labels(served), owner),
        "spec": spec,
    }


def render_service(served: ServedVersion, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(served.name, served.namespace, _labels(served), owner),
        "spec": {
            "selector": served.selector,
            "ports": [
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "appProtocol": "kubernetes.io/h2c",
                },
                {"name": "http", "port": HTTP_PORT, "targetPort": "http"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"},
            ],
        },
    }


def role_service_name(recmodel: str, target: str, role: str) -> str:
    """``<recmodel>-<target>-stable`` or ``-canary``: names that never change."""
    return object_name(recmodel, target, role)


def render_role_services(
    namespace: str,
    recmodel: str,
    target: DeploymentTarget,
    stable: str,
    canary: str,
    owner: Obj | None,
) -> list[Obj]:
    """The target's stable and canary Services, selecting the pods of those versions.

    Fixed names give clients a stable address that follows promotions and let a user's
    own GRPCRoute split traffic by role; with no candidate the canary selects the stable
    version, so a canary weight never points at no pods. Labelled ``routing``, not
    ``serving``: the ServiceMonitor must not scrape the same pods twice.
    """
    objs = []
    for role, version in (("stable", stable), ("canary", canary)):
        served = ServedVersion(namespace, recmodel, version, target)
        name = role_service_name(recmodel, target.name.value, role)
        obj = render_service(served, owner)
        obj["metadata"] = metadata(
            name,
            namespace,
            labels(recmodel, "routing", **{LABEL_TARGET: target.name.value}),
            owner,
        )
        objs.append(obj)
    return objs


def render_hpa(served: ServedVersion, owner: Obj | None) -> Obj | None:
    auto = served.target.autoscaling
    if not auto.enabled:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(served.name, served.namespace, _labels(served), owner),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": served.name},
            "minReplicas": auto.min_replicas,
            "maxReplicas": auto.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": auto.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


def render_service_monitor(namespace: str, recmodel: str, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(recmodel, namespace, labels(recmodel, "serving"), owner),
        "spec": {
            "selector": {"matchLabels": {LABEL_RECMODEL: recmodel, LABEL_COMPONENT: "serving"}},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
            # Series carry their RecModel (as recops_io_recmodel): model versions repeat
            # across RecModels, and rollout analysis selects on it.
            "targetLabels": [LABEL_RECMODEL],
        },
    }


def _header(name: str, value: str) -> Obj:
    return {"type": "Exact", "name": name, "value": value}


def render_grpc_route(
    namespace: str,
    recmodel: str,
    targets: list[DeploymentTarget],
    weights: dict[str, int],
    settings: OperatorSettings,
    owner: Obj | None,
    served_on: dict[str, set[str]] | None = None,
) -> Obj:
    """One rule per target, each matching only this RecModel's requests (``x-recops-model``);
    the first target takes them without the target header.

    ``weights`` maps served versions to percentages (stable=100 unless a Rollout moved it);
    ``served_on`` the versions with an engine on each target: a backend of a version that
    does not run on a target would make that target answer UNAVAILABLE, so it is left out.
    """
    parent: Obj = {"name": settings.gateway_name}
    if settings.gateway_namespace:
        parent["namespace"] = settings.gateway_namespace
    rules: list[Obj] = []
    for index, target in enumerate(targets):
        there = None if served_on is None else served_on.get(target.name.value, set())
        backends = [
            {
                "name": ServedVersion(namespace, recmodel, version, target).name,
                "port": GRPC_PORT,
                "weight": weight,
            }
            for version, weight in weights.items()
            if there is None or version in there
        ]
        headers = [_header(MODEL_HEADER, recmodel)]
        if index > 0:
            headers.append(_header(TARGET_HEADER, target.name.value))
        rules.append({"matches": [{"headers": headers}], "backendRefs": backends})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": metadata(recmodel, namespace, labels(recmodel, "routing"), owner),
        "spec": {"parentRefs": [parent], "rules": rules},
    }
