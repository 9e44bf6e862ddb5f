"""The Rollout controller in the real operator process against an emulated API server.

The RecModel's serving objects (Deployments, GRPCRoute) are created here as the RecModel
controller would render them; a small gateway stand-in sends traffic to the versions at
the GRPCRoute's weights and counts it in the runtime's own metrics, which a real
Prometheus scrapes. Checked: the route's weights follow the steps, promotion moves the
MLflow champion alias, an operator restart resumes at the same step and weights, abort
then retry works, and kubectl shows step, weights and phase.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from recops_cli.quickstart.processes import free_port
from recops_operator import resources as res
from recops_operator.api.recmodel import DeploymentTarget
from recops_operator.clients.kubernetes import KubeClient
from recops_operator.render.serving import (
    ServedVersion,
    render_grpc_route,
    render_role_services,
)
from recops_operator.settings import OperatorSettings
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_testkit.background import BackgroundOperator
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.schemas import validate_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

NS = "ml"
Eventually = Callable[..., Awaitable[Any]]
TARGET = DeploymentTarget.model_validate({"name": "cpu-onnxruntime"})
MODULES = ("recops_operator.controllers.rollout",)


class Operator:
    """The operator with only the Rollout controller, in its own thread; restartable."""

    def __init__(self, url: str, prometheus: str) -> None:
        settings = OperatorSettings(
            standalone=True,
            liveness_endpoint=None,
            resync_interval=0.5,
            log_format="plain",
            prometheus_url=prometheus,
        )
        self._op = BackgroundOperator(url, settings, MODULES)

    async def start(self) -> None:
        await asyncio.to_thread(self._op.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._op.stop)


class Gateway:
    """Sends 400 requests/s to each RecModel's versions at its GRPCRoute's weights; each
    RecModel's pods export their own series (one registry per RecModel here)."""

    def __init__(self, kube: KubeClient, metrics: dict[str, RuntimeMetrics]) -> None:
        self.kube, self.registries = kube, metrics
        self.rng = random.Random(0)

    async def resolve(self, route: str, backend: str) -> tuple[str, str]:
        """(RecModel, version) behind a backend: a Service's selector, as a gateway reads
        it through the Service's endpoints; else the name of a version's own Service."""
        svc = await self.kube.get(res.SERVICES, NS, backend)
        if svc is not None:
            selector = svc["spec"]["selector"]
            return selector["recops.io/recmodel"], selector["recops.io/version"]
        return route, backend.split("-")[1]

    async def run(self) -> None:
        while True:
            for route in await self.kube.list(res.GRPCROUTES, NS):
                for backend in route["spec"]["rules"][0]["backendRefs"]:
                    model, version = await self.resolve(route["metadata"]["name"], backend["name"])
                    metrics = self.registries[model]
                    n = 40 * backend.get("weight", 1) // 100
                    if n:
                        metrics.requests.labels(version, "cpu-onnxruntime", "OK").inc(n)
                        metrics.recommendations.labels(version, "cpu-onnxruntime").inc(n)
                        metrics.online_hits.labels(version).inc(
                            sum(self.rng.random() < 0.2 for _ in range(n))
                        )
                        for _ in range(n):
                            metrics.latency.labels(version, "cpu-onnxruntime").observe(0.003)
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def validate_route() -> Callable[[dict[str, Any]], None]:
    """Raise when a GRPCRoute would be refused (or silently pruned) by a real API server
    with Gateway API."""
    return validate_object


RECMODELS = ("movies", "books", "music", "films", "shows")


@pytest.fixture(scope="module")
def exporters() -> Iterator[dict[str, tuple[RuntimeMetrics, str]]]:
    """One metrics endpoint per RecModel, as each RecModel's serving pods have."""
    from prometheus_client import start_http_server

    out, servers = {}, []
    for name in RECMODELS:
        metrics = RuntimeMetrics()
        port = free_port()
        servers.append(start_http_server(port, addr="127.0.0.1", registry=metrics.registry))
        out[name] = (metrics, f"127.0.0.1:{port}")
    yield out
    for server, thread in servers:
        server.shutdown()
        thread.join(5)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def operator(
    api: ApiServerEmulator,
    kube: KubeClient,
    exporters: dict[str, tuple[RuntimeMetrics, str]],
    start_prometheus: Callable[..., str],
) -> AsyncIterator[Operator]:
    # The target labels a ServiceMonitor gives each RecModel's pods.
    labels = {t: {"namespace": NS, "recops_io_recmodel": n} for n, (_, t) in exporters.items()}
    prometheus = await asyncio.to_thread(start_prometheus, list(labels), labels)
    registries = {name: metrics for name, (metrics, _) in exporters.items()}
    gateway = asyncio.create_task(Gateway(kube, registries).run())
    handle = Operator(str(api.url), prometheus)
    await handle.start()
    yield handle
    await handle.stop()
    gateway.cancel()


async def serving(
    kube: KubeClient,
    name: str,
    stable: str,
    candidate: str,
    tracking: str,
    policy: dict[str, Any] | None = None,
) -> None:
    """What the RecModel controller would have made: the RecModel with its status, one
    ready Deployment per version, and the GRPCRoute with all traffic on stable."""
    await kube.create(
        {
            "apiVersion": "recops.io/v1alpha1",
            "kind": "RecModel",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "dataset": {"format": "movielens-1m"},
                "targets": [{"name": TARGET.name.value}],
                "mlflow": {"trackingUri": tracking},
                "rolloutPolicy": policy or {},
            },
        }
    )
    await kube.patch(
        res.RECMODELS,
        NS,
        name,
        {"status": {"phase": "Serving", "stableVersion": stable, "candidateVersion": candidate}},
        subresource="status",
    )
    for version in (stable, candidate):
        sv = ServedVersion(NS, name, version, TARGET)
        await kube.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": sv.name,
                    "namespace": NS,
                    "labels": {
                        "recops.io/recmodel": name,
                        "app.kubernetes.io/component": "serving",
                        "recops.io/version": version,
                    },
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": sv.selector},
                    "template": {
                        "metadata": {"labels": sv.selector},
                        "spec": {"containers": [{"name": "serve", "image": "recops"}]},
                    },
                },
                "status": {"replicas": 1, "readyReplicas": 1},
            }
        )
    user_route = ((policy or {}).get("trafficRouting") or {}).get("grpcRoute")
    if user_route is None:
        route = render_grpc_route(
            NS, name, [TARGET], {stable: 100, candidate: 0}, OperatorSettings(standalone=True), None
        )
        await kube.create(route)
        return
    for svc in render_role_services(NS, name, TARGET, stable, candidate, None):
        await kube.create(svc)
    await kube.create(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GRPCRoute",
            "metadata": {"name": user_route, "namespace": NS},
            "spec": {
                "parentRefs": [{"name": "edge"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": f"{name}-{TARGET.name.value}-stable", "port": 8500},
                            {
                                "name": f"{name}-{TARGET.name.value}-canary",
                                "port": 8500,
                                "weight": 0,
                            },
                        ]
                    },
                    {
                        "matches": [{"method": {"service": "search.v1.Search"}}],
                        "backendRefs": [{"name": "search", "port": 9000}],
                    },
                ],
            },
        }
    )


def rollout(name: str, model: str, candidate: str, policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"recModel": model, "candidateVersion": candidate, "policy": policy},
    }


async def route_weights(kube: KubeClient, name: str) -> dict[str, int]:
    route = await kube.get(res.GRPCROUTES, NS, name)
    assert route is not None
    return {b["name"].split("-")[1]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


async def rollout_status(kube: KubeClient, name: str) -> dict[str, Any]:
    return (await kube.get(res.ROLLOUTS, NS, name) or {}).get("status") or {}


def register_versions(tracking: str, model: str) -> None:
    """Two registered versions with ``champion`` on version 1 (MLflow's REST API)."""
    api = f"{tracking}/api/2.0/mlflow"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        rsp = httpx.post(f"{api}/{path}", json=body, timeout=30)
        rsp.raise_for_status()
        return dict(rsp.json())

    experiment = post("experiments/create", {"name": f"rollout-{model}"})["experiment_id"]
    run = post("runs/create", {"experiment_id": experiment})["run"]["info"]
    post("registered-models/create", {"name": model})
    for _ in range(2):
        source = f"{run['artifact_uri']}/model"
        post("model-versions/create", {"name": model, "source": source, "run_id": run["run_id"]})
    post("registered-models/alias", {"name": model, "alias": "champion", "version": "1"})


def champion(tracking: str, model: str) -> str:
    rsp = httpx.get(f"{tracking}/api/2.0/mlflow/registered-models/get", params={"name": model})
    aliases = {a["alias"]: a["version"] for a in rsp.json()["registered_model"]["aliases"]}
    return str(aliases["champion"])


async def test_weights_follow_the_steps_and_promotion_moves_the_champion(
    kube: KubeClient,
    operator: Operator,
    mlflow_url: str,
    validate_route: Callable[[dict[str, Any]], None],
    eventually: Eventually,
) -> None:
    await asyncio.to_thread(register_versions, mlflow_url, "movies")
    await serving(kube, "movies", "1", "2", mlflow_url)
    policy = {
        "analysisInterval": "3s",
        "steps": [
            {"setWeight": 20},
            {"analysis": {}},
            {"setWeight": 60},
            {"pause": {"duration": "1s"}},
            {"analysis": {}},
            {"setWeight": 100},
        ],
        "metrics": [
            {
                "name": "errors",
                "builtin": "error-rate",
                "successCondition": "<=",
                "threshold": 0.01,
                "minSampleSize": 20,
            },
            {
                "name": "hits",
                "builtin": "hit-rate-vs-stable",
                "successCondition": ">=",
                "threshold": -0.1,
                "minSampleSize": 20,
            },
        ],
    }
    await kube.create(rollout("movies-2", "movies", "2", policy))
    seen: list[int] = []

    async def promoted() -> bool:
        weights = await route_weights(kube, "movies")
        if not seen or seen[-1] != weights["2"]:
            seen.append(weights["2"])
            route = await kube.get(res.GRPCROUTES, NS, "movies")
            assert route is not None
            validate_route(route)
        return (await rollout_status(kube, "movies-2")).get("phase") == "Promoted"

    await eventually(promoted, "the rollout to be promoted", timeout=90)
    assert seen == [0, 20, 60, 100]
    status = await rollout_status(kube, "movies-2")
    assert status["weights"] == {"stable": 0, "candidate": 100}
    assert status["reason"] == "AllStepsCompleted"
    metrics = {m["name"]: m for m in status["metrics"]}
    assert metrics["errors"]["phase"] == "Successful" and metrics["errors"]["sampleSize"] >= 20
    assert metrics["hits"]["stableValue"] == pytest.approx(0.2, abs=0.1)
    reasons = [d["reason"] for d in status["history"]]
    assert reasons.count("WeightSet") == 3 and reasons.count("AnalysisPassed") == 2
    assert await asyncio.to_thread(champion, mlflow_url, "movies") == "2"
    events = await kube.list(res.EVENTS, NS)
    about = [e for e in events if e.get("involvedObject", {}).get("name") == "movies-2"]
    assert {"WeightSet", "AnalysisPassed", "AllStepsCompleted"} <= {e["reason"] for e in about}


async def paused(kube: KubeClient, name: str) -> dict[str, Any] | None:
    s = await rollout_status(kube, name)
    return s if s.get("reason") == "PausedUntilPromoted" else None


HOLD = {"steps": [{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}], "metrics": []}


async def test_an_operator_restart_resumes_at_the_same_step_and_weights(
    kube: KubeClient, operator: Operator, mlflow_url: str, eventually: Eventually
) -> None:
    await serving(kube, "books", "11", "12", mlflow_url)
    await kube.create(rollout("books-12", "books", "12", HOLD))

    before = await eventually(lambda: paused(kube, "books-12"), "the pause step")
    assert (await route_weights(kube, "books"))["12"] == 30
    await operator.stop()
    await operator.start()
    await asyncio.sleep(2)  # several resync periods of the new operator
    after = await rollout_status(kube, "books-12")
    assert after["currentStepIndex"] == before["currentStepIndex"] == 1
    assert after["weights"] == before["weights"] == {"stable": 70, "candidate": 30}
    assert after["history"] == before["history"]
    assert (await route_weights(kube, "books"))["12"] == 30
    # A GitOps user aborts with an annotation.
    await kube.patch(
        res.ROLLOUTS, NS, "books-12", {"metadata": {"annotations": {"recops.io/abort": "true"}}}
    )

    async def aborted() -> bool:
        return (await rollout_status(kube, "books-12")).get("phase") == "Aborted"

    await eventually(aborted, "the abort")
    assert await route_weights(kube, "books") == {"11": 100, "12": 0}


async def test_abort_then_retry(
    kube: KubeClient, operator: Operator, mlflow_url: str, eventually: Eventually
) -> None:
    await serving(kube, "music", "21", "22", mlflow_url)
    await kube.create(rollout("music-22", "music", "22", HOLD))

    async def weight(w: int) -> bool:
        return (await route_weights(kube, "music"))["22"] == w

    await eventually(lambda: weight(30), "candidate at 30%")
    await kube.patch(res.ROLLOUTS, NS, "music-22", {"spec": {"abort": True}})
    await eventually(lambda: weight(0), "all traffic back to stable")
    status = await rollout_status(kube, "music-22")
    assert (status["phase"], status["reason"]) == ("Aborted", "AbortedByUser")
    # Retry while abort is still set is refused, with a message saying what to do.
    await kube.patch(res.ROLLOUTS, NS, "music-22", {"spec": {"retry": 1}})

    async def blocked() -> bool:
        return (await rollout_status(kube, "music-22")).get("reason") == "RetryBlockedByAbort"

    await eventually(blocked, "the blocked retry")
    assert await weight(0)
    await kube.patch(res.ROLLOUTS, NS, "music-22", {"spec": {"abort": False}})
    await eventually(lambda: weight(30), "the retried rollout at 30% again")
    status = await eventually(lambda: paused(kube, "music-22"), "the retried rollout's pause")
    assert status["observedRetry"] == 1
    assert "Retried" in [d["reason"] for d in status["history"]]


async def test_a_rollout_waits_for_its_recmodel_and_refuses_an_invalid_policy(
    api: ApiServerEmulator, kube: KubeClient, operator: Operator, eventually: Eventually
) -> None:
    await kube.create(rollout("films-2", "films", "2", HOLD))

    async def reason(name: str, want: str) -> dict[str, Any] | None:
        s = await rollout_status(kube, name)
        return s if s.get("reason") == want else None

    pending = await eventually(lambda: reason("films-2", "RecModelNotFound"), "Pending")
    assert pending["phase"] == "Pending"
    bad = {"steps": [{"setWeight": 50}, {"setWeight": 20}]}
    # A real server refuses it at the door (the CRD's CEL rule); stored as sent here, as an
    # object from before that rule was, to show the operator's own check.
    api.admission = False
    try:
        await kube.create(rollout("films-3", "films", "3", bad))
    finally:
        api.admission = True
    failed = await eventually(lambda: reason("films-3", "InvalidSpec"), "the invalid spec")
    assert failed["phase"] == "Failed"
    assert "spec.policy: steps[1].setWeight: weights must not decrease" in failed["message"]
    valid = next(c for c in failed["conditions"] if c["type"] == "SpecValid")
    assert valid["status"] == "False"
    # Fixing the spec starts the rollout over (here: waiting for its RecModel).
    await kube.patch(res.ROLLOUTS, NS, "films-3", {"spec": {"policy": HOLD}})
    await eventually(lambda: reason("films-3", "RecModelNotFound"), "the fixed rollout")


async def test_a_users_own_route_is_steered_through_the_role_services(
    kube: KubeClient,
    operator: Operator,
    mlflow_url: str,
    validate_route: Callable[[dict[str, Any]], None],
    eventually: Eventually,
) -> None:
    await asyncio.to_thread(register_versions, mlflow_url, "shows")
    policy = {"trafficRouting": {"grpcRoute": "public"}}
    await serving(kube, "shows", "1", "2", mlflow_url, policy)
    # Sticky cannot be honoured by a GRPCRoute: the rollout goes on and says so.
    await kube.create(
        rollout("shows-2", "shows", "2", {**HOLD, "trafficRouting": {"sticky": True}})
    )

    async def split() -> tuple[dict[str, int], list[int]]:
        route = await kube.get(res.GRPCROUTES, NS, "public")
        assert route is not None
        validate_route(route)
        mine, other = route["spec"]["rules"]
        weights = {b["name"].rsplit("-", 1)[1]: b.get("weight", 1) for b in mine["backendRefs"]}
        return weights, [b.get("weight", 1) for b in other["backendRefs"]]

    await eventually(lambda: paused(kube, "shows-2"), "the pause step")
    # The role backends carry the step's weights; the user's other rule is left alone.
    assert await split() == ({"stable": 70, "canary": 30}, [1])
    assert await kube.get(res.GRPCROUTES, NS, "shows") is None  # no route of its own made
    events = await kube.list(res.EVENTS, NS)
    about = {e["reason"] for e in events if e.get("involvedObject", {}).get("name") == "shows-2"}
    assert "StickyNotApplied" in about and "TrafficRoutingNotApplied" not in about
    await kube.patch(
        res.ROLLOUTS, NS, "shows-2", {"metadata": {"annotations": {"recops.io/promote": "true"}}}
    )

    async def promoted() -> bool:
        return (await rollout_status(kube, "shows-2")).get("phase") == "Promoted"

    await eventually(promoted, "the promotion")
    assert await split() == ({"stable": 0, "canary": 100}, [1])
    # A Rollout whose policy names another route than its RecModel's waits, saying why.
    other = {**HOLD, "trafficRouting": {"grpcRoute": "elsewhere"}}
    await kube.create(rollout("shows-3", "shows", "3", other))

    async def conflict() -> dict[str, Any] | None:
        s = await rollout_status(kube, "shows-3")
        return s if s.get("reason") == "GRPCRouteConflict" else None

    status = await eventually(conflict, "the route conflict")
    assert status["phase"] == "Pending"
    assert "rolloutPolicy.trafficRouting.grpcRoute" in status["message"]


async def test_kubectl_get_rollouts_shows_step_weights_and_phase(
    api: ApiServerEmulator, operator: Operator, tmp_path: Path
) -> None:
    config = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
    out = await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "--kubeconfig", str(config), "get", "rollouts"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "CANDIDATE", "STEP", "WEIGHTS", "PHASE", "AGE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "stable=0 candidate=100" in rows["movies-2"] and "Promoted" in rows["movies-2"]
    assert "stable=70 candidate=30" in rows["music-22"] and "Paused" in rows["music-22"]
