"""The operator survives what real API servers do to their clients: write conflicts on
patches and status writes, expired and dropped watches, throttling and unavailability with
Retry-After, and connections dropped mid-request. Each test injects one fault into a
RecModel's first training and asserts the same converged end state as without it: the
TrainingRun records its RayJob, exactly one RayJob exists, and the RecModel says it is
training. A Rollout's faults (and an API server restart) are in test_rollout_faults.py,
operator restarts at each TrainingRun phase in test_training_restarts.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kmock
import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.faults import Fault, Faults
from recops_testkit.manifests import custom_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
# Seconds. A passing failure is retried within a second (controllers/retry.py); the rest
# is headroom for a loaded machine.
CONVERGED_WITHIN = 60.0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServerEmulator]:
    """A server that admits as a real one, so the operator's writes pass the CRD schemas."""
    async with ApiServerEmulator() as emulator, kmock.Server(emulator):
        yield emulator


def recmodel(name: str) -> dict[str, Any]:
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": "cpu-openvino"}],
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        # RayJob training mounts a shared claim in every Ray pod; without one it is InvalidSpec.
        "training": {"storageClaim": "training-runs"},
    }
    return custom_object("RecModel", name, NS, spec)


async def converged(api: ApiServerEmulator, name: str, eventually: Eventually) -> dict[str, Any]:
    """Wait for the end state of a first training; return the TrainingRun's status. Reads
    the server's store directly, so the probes never take a fault meant for the operator."""
    run, rayjob = f"{name}-g1", f"{name}-g1-a1"

    async def submitted() -> dict[str, Any] | None:
        status = api.stored(res.TRAININGRUNS, NS).get(run, {}).get("status") or {}
        job = api.stored(res.RAYJOBS, NS).get(rayjob)
        return status if job is not None and status.get("rayJobId") else None

    status = await eventually(submitted, f"{run} to record its RayJob", timeout=CONVERGED_WITHIN)
    assert (status["phase"], status["jobKind"], status["jobName"]) == ("Pending", "RayJob", rayjob)
    jobs = [
        job_name
        for job_name, job in api.stored(res.RAYJOBS, NS).items()
        if (job["metadata"].get("labels") or {}).get("recops.io/training-run") == run
    ]
    assert jobs == [rayjob], "exactly one RayJob per attempt"
    assert api.stored(res.RAYJOBS, NS)[rayjob]["spec"]["jobId"] == status["rayJobId"]

    async def training() -> bool:
        obj = api.stored(res.RECMODELS, NS).get(name) or {}
        return (obj.get("status") or {}).get("phase") == "Training"

    await eventually(training, f"RecModel {name} in phase Training", timeout=CONVERGED_WITHIN)
    result: dict[str, Any] = status
    return result


ARM: dict[str, Callable[[Faults], Fault]] = {
    "conflict-on-status-writes": lambda f: f.conflict("trainingruns", subresource="status"),
    "conflict-on-patches": lambda f: f.conflict("trainingruns"),
    "watch-expired": lambda f: f.on_watch("trainingruns", "expire"),
    "watch-dropped": lambda f: f.on_watch("trainingruns", "drop"),
    "throttled-create": lambda f: f.unavailable("rayjobs", "create", status=429, retry_after=1),
    "unavailable-get": lambda f: f.unavailable("trainingruns", "get", status=503, retry_after=1),
    # The connection closes under the request: the server did not act on it, or it stored
    # the write and the answer is lost (the operator cannot tell which).
    "dropped-create": lambda f: f.dropped("rayjobs", "create"),
    "dropped-after-create": lambda f: f.dropped("rayjobs", "create", applied=True),
    "dropped-after-status-write": lambda f: f.dropped(
        "trainingruns", "patch", applied=True, subresource="status"
    ),
}


async def test_without_faults_a_recmodel_converges(
    api: ApiServerEmulator, kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    """The baseline each fault is compared with."""
    await kube.create(recmodel("calm"))
    await converged(api, "calm", eventually)


@pytest.mark.parametrize("fault", list(ARM))
async def test_the_operator_converges_through_the_fault(
    api: ApiServerEmulator, kube: KubeClient, operator: Any, eventually: Eventually, fault: str
) -> None:
    armed = ARM[fault](api.faults)
    await kube.create(recmodel(fault))
    await converged(api, fault, eventually)
    assert armed.hits == armed.times, f"the fault {fault} never fired"
