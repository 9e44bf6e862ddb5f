"""Two operator replicas with the chart's settings: exactly one acts, the other takes over.

The chart runs every replica with the same settings and peering on (no fixed priority), so
this is what two pods of the operator Deployment do against one API server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import kmock
import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_operator.settings import OperatorSettings
from recops_testkit.background import BackgroundOperator
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
PEERING = "recops"
# A stopping replica removes its peering record, and the standing-by one sees the peering
# object change at once; Kopf's keep-alive and watch restarts bound how long that takes.
TAKEOVER_SECONDS = 30.0
CREATED = ("recops.io", "trainingruns", "create")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServerEmulator]:
    """A cluster with Kopf's peering CRDs (the chart ships them) and the peering object."""
    async with ApiServerEmulator() as emulator, kmock.Server(emulator):
        del emulator.resources["ray.io/v1/rayjobs"]
        for plural, kind, namespaced in (
            ("clusterkopfpeerings", "ClusterKopfPeering", False),
            ("kopfpeerings", "KopfPeering", True),
        ):
            emulator.resources[f"kopf.dev/v1/{plural}"] = kmock.ResourceInfo(
                kind=kind,
                namespaced=namespaced,
                singular=kind.lower(),
                verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
            )
        peering = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": PEERING},
        }
        async with httpx.AsyncClient(base_url=str(emulator.url)) as http:
            reply = await http.post("/apis/kopf.dev/v1/clusterkopfpeerings", json=peering)
            reply.raise_for_status()
        yield emulator


def chart_settings() -> OperatorSettings:
    """What templates/operator-deployment.yaml sets with replicas: 2 (no priority)."""
    return OperatorSettings(
        standalone=False,
        peering_name=PEERING,
        liveness_endpoint=None,
        resync_interval=0.5,
        log_format="plain",
    )


def recmodel(name: str) -> dict[str, Any]:
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": "cpu-onnxruntime"}],
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
    }
    return custom_object("RecModel", name, NS, spec)


async def peers(api: ApiServerEmulator) -> bool:
    async with httpx.AsyncClient(base_url=str(api.url)) as http:
        reply = await http.get(f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
    return len(reply.json().get("status") or {}) == 2


async def test_one_replica_acts_and_the_other_takes_over(
    api: ApiServerEmulator, kube: KubeClient, eventually: Eventually
) -> None:
    replicas = [BackgroundOperator(str(api.url), chart_settings()) for _ in range(2)]
    for op in replicas:
        await asyncio.to_thread(op.start)
    try:
        # Peering settles once each replica has seen the other's record: a replica that
        # started alone acts until then (Kopf's peering is eventually consistent).
        await eventually(lambda: peers(api), "both replicas in the peering object")
        await asyncio.sleep(1)
        await kube.create(recmodel("first"))
        await eventually(
            lambda: kube.get(res.TRAININGRUNS, NS, "first-g1"), "the first TrainingRun"
        )
        await asyncio.sleep(2)  # time for a second, wrong, actor to show itself
        acting = [op for op in replicas if CREATED in op.calls]
        assert len(acting) == 1, f"{len(acting)} replicas acted"
        standby = next(op for op in replicas if op is not acting[0])
        writes = {c for c in standby.calls if c[2] in {"create", "patch"}}
        assert not writes, writes

        await asyncio.to_thread(acting[0].stop)
        stopped = time.monotonic()
        await kube.create(recmodel("second"))
        await eventually(
            lambda: kube.get(res.TRAININGRUNS, NS, "second-g1"),
            "the standby replica to take over",
            timeout=TAKEOVER_SECONDS,
        )
        assert CREATED in standby.calls
        assert time.monotonic() - stopped < TAKEOVER_SECONDS
    finally:
        for op in replicas:
            await asyncio.to_thread(op.stop)
