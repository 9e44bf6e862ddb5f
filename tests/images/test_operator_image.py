"""The operator image runs as the chart's Deployment runs it and acts on a RecModel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import pytest_asyncio
import yaml

from recops_cli.quickstart.processes import free_port
from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient, KubeConnection
from recops_testkit.containers import started
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object
from recops_testkit.pods import PodVolumes, container, pod_spec, run_args
from recops_testkit.prerequisites import REPO_ROOT

CHART = REPO_ROOT / "charts" / "recops"
NS = "ml"


def chart_operator() -> dict[str, Any]:
    """The operator Deployment the chart renders with its default values."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart")
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values={}, name="recops", namespace="recops-system")
    texts = [t for name, t in manifests.items() if name.endswith((".yaml", ".yml"))]
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    return next(
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    )


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServerEmulator]:
    async with ApiServerEmulator() as emulator, kmock.Server(emulator):
        yield emulator


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_operator_image_starts_answers_health_and_acts(
    builder: str,
    build_image: Callable[[str], str],
    api: ApiServerEmulator,
    termination_log: Callable[[str], Path],
    timed: Callable[[str, float], None],
) -> None:
    image = await asyncio.to_thread(build_image, "operator")
    spec = pod_spec(chart_operator())
    health = free_port()
    ports = {p["containerPort"]: health for p in container(spec)["ports"]}
    # In a cluster the operator reads its service account; here it is pointed at the
    # emulated API server, which takes plain HTTP on loopback.
    args = run_args(
        spec,
        image,
        PodVolumes(),
        termination_log("operator"),
        ports=ports,
        extra_args=["--server", str(api.url)],
        podman=builder == "podman",
    )
    start = time.monotonic()
    pod_cm = started(builder, args)
    pod = await asyncio.to_thread(pod_cm.__enter__)
    try:

        async def healthy() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    reply = await http.get(f"http://127.0.0.1:{health}/healthz", timeout=2)
                return reply.status_code == 200
            except httpx.HTTPError:
                return False

        try:
            await until(healthy, "the operator's /healthz", timeout=90)
        except AssertionError:
            raise AssertionError(await asyncio.to_thread(pod.logs)) from None
        timed("operator: start to healthy", time.monotonic() - start)
        spec_ = {
            "dataset": {"format": "synthetic"},
            "targets": [{"name": "cpu-onnxruntime"}],
            "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        }
        async with KubeClient(KubeConnection(server=str(api.url))) as kube:
            await kube.create(custom_object("RecModel", "first", NS, spec_))
            try:
                await until(
                    lambda: kube.get(res.TRAININGRUNS, NS, "first-g1"),
                    "the TrainingRun the operator creates",
                    timeout=60,
                )
            except AssertionError:
                raise AssertionError(await asyncio.to_thread(pod.logs)) from None
    finally:
        await asyncio.to_thread(pod_cm.__exit__, None, None, None)
