"""A TrainingRun survives its operator being stopped and started again at each phase:
after recording its RayJob's name but before creating it, Pending, Running, Evaluating
and Compiling. It never submits a second RayJob, never counts a second attempt, and ends
Succeeded with the engines of its compile Jobs, as a run without restarts does. While it
runs, its status shows the epochs the trainer has logged to MLflow."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object
from recops_testkit.training_results import (
    engine_manifest,
    finish_compile,
    log_epochs,
    log_training_result,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
MODEL = "shows"
RUN = f"{MODEL}-g1"
RAYJOB = f"{RUN}-a1"
TARGET = "cpu-openvino"
EPOCHS = 20
WITHIN = 60.0  # seconds; a restarted operator resumes every object at start-up


def stored(
    api: ApiServerEmulator, resource: res.Resource, name: str
) -> Callable[[], Awaitable[Any]]:
    """A probe for ``eventually``: the object as stored, or None."""

    async def probe() -> Any:
        return api.stored(resource, NS).get(name)

    return probe


def run_status(api: ApiServerEmulator) -> dict[str, Any]:
    return dict((api.stored(res.TRAININGRUNS, NS).get(RUN) or {}).get("status") or {})


async def in_phase(api: ApiServerEmulator, phase: str, eventually: Eventually) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        s = run_status(api)
        return s if s.get("phase") == phase else None

    result: dict[str, Any] = await eventually(reached, f"{RUN} in phase {phase}", timeout=WITHIN)
    return result


async def restart(operator: Any) -> None:
    await operator.stop()
    await operator.start()
    await asyncio.sleep(2)  # several resync periods of the new operator


def one_attempt(api: ApiServerEmulator, phase: str) -> None:
    """The invariant after every restart: one RayJob, one attempt, the phase kept."""
    jobs = [
        name
        for name, job in api.stored(res.RAYJOBS, NS).items()
        if (job["metadata"].get("labels") or {}).get("recops.io/training-run") == RUN
    ]
    assert jobs == [RAYJOB], "exactly one RayJob"
    status = run_status(api)
    assert (status.get("phase"), status.get("attempts")) == (phase, 1)
    assert api.stored(res.RAYJOBS, NS)[RAYJOB]["spec"]["jobId"] == status["rayJobId"]


async def ray_job_reports(kube: KubeClient, status: dict[str, Any]) -> None:
    await kube.patch(res.RAYJOBS, NS, RAYJOB, {"status": status}, subresource="status")


async def test_restarts_at_every_phase_never_submit_twice(
    api: ApiServerEmulator,
    kube: KubeClient,
    operator: Any,
    mlflow_server: Any,
    eventually: Eventually,
) -> None:
    # Killed between the status write and the RayJob's creation: the create keeps failing.
    refused = api.faults.unavailable("rayjobs", "create", status=503, times=1_000_000)
    spec = {
        "dataset": {"format": "synthetic"},
        "training": {"storageClaim": "training-runs"},
        "mlflow": {"trackingUri": mlflow_server.url},
        "targets": [{"name": TARGET}],
        "model": {"epochs": EPOCHS},
    }
    await kube.create(custom_object("RecModel", MODEL, NS, spec))

    async def recorded() -> bool:
        return run_status(api).get("jobName") == RAYJOB and refused.hits > 0

    await eventually(recorded, "the RayJob's name recorded, its creation refused", timeout=WITHIN)
    await operator.stop()
    assert RAYJOB not in api.stored(res.RAYJOBS, NS)
    refused.times = refused.hits  # the API server is back to normal
    await operator.start()
    await eventually(stored(api, res.RAYJOBS, RAYJOB), "the recorded RayJob")
    await asyncio.sleep(1)
    one_attempt(api, "Pending")

    await restart(operator)
    one_attempt(api, "Pending")

    await ray_job_reports(kube, {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    await in_phase(api, "Running", eventually)
    await restart(operator)
    one_attempt(api, "Running")

    # Progress while it runs, from the epochs the trainer has logged to MLflow so far.
    await asyncio.to_thread(mlflow_server.wait_ready)
    await asyncio.to_thread(log_epochs, mlflow_server.url, f"{NS}/{RUN}", [0.31, 0.42])

    async def progressed() -> dict[str, Any] | None:
        progress = run_status(api).get("progress") or {}
        return progress if progress.get("epoch") == 2 else None

    progress = await eventually(progressed, "progress at epoch 2", timeout=WITHIN)
    assert progress["epochs"] == EPOCHS
    assert progress["validation"] == {"val_ndcg_at_10": pytest.approx(0.42)}
    assert progress["reportedAt"] <= progress["estimatedFinish"]

    # The job finished; the trainer's MLflow run is not there yet.
    await ray_job_reports(kube, {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"})
    await in_phase(api, "Evaluating", eventually)
    await restart(operator)
    one_attempt(api, "Evaluating")

    await asyncio.to_thread(log_training_result, mlflow_server.url, f"{NS}/{RUN}", MODEL)
    await in_phase(api, "Compiling", eventually)
    compile_job = f"{RUN}-compile-{TARGET}"
    await eventually(stored(api, res.JOBS, compile_job), "the compile Job")
    await restart(operator)
    one_attempt(api, "Compiling")
    compiles = [n for n in api.stored(res.JOBS, NS) if n.startswith(f"{RUN}-compile-")]
    assert compiles == [compile_job]

    await finish_compile(kube, NS, compile_job, engine_manifest(TARGET, MODEL))
    status = await in_phase(api, "Succeeded", eventually)
    assert [e["target"] for e in status["engines"]] == [TARGET]
    one_attempt(api, "Succeeded")
