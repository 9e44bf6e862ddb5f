"""Without KubeRay, with failing jobs, after a crash, and with invalid specs: the operator
degrades to a batch Job, retries as the spec says, never submits twice, and explains."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import kmock
import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object
from recops_testkit.schemas import validate_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServerEmulator]:
    """A cluster without KubeRay and without the Prometheus operator."""
    async with ApiServerEmulator() as emulator, kmock.Server(emulator):
        del emulator.resources["ray.io/v1/rayjobs"]
        del emulator.resources["monitoring.coreos.com/v1/servicemonitors"]
        yield emulator


@pytest.fixture
def unadmitted(api: ApiServerEmulator) -> Iterator[None]:
    """Store objects as sent, without the CRD's admission, for this test.

    A real server refuses these objects today, but the operator must still defend against
    objects that predate a CRD change (stored under a looser schema, or restored from a
    backup with their status): its own validation is what these tests exercise.
    """
    api.admission = False
    try:
        yield
    finally:
        api.admission = True


def recmodel(name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": targets,
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
    }
    return custom_object("RecModel", name, NS, spec)


def training_run(
    name: str, spec: dict[str, Any], status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return custom_object("TrainingRun", name, NS, spec, status)


async def status_of(kube: KubeClient, resource: res.Resource, name: str) -> dict[str, Any]:
    obj = await kube.get(resource, NS, name)
    return (obj or {}).get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


async def fail_job(kube: KubeClient, name: str, message: str) -> None:
    await kube.patch(
        res.JOBS,
        NS,
        name,
        {
            "status": {
                "failed": 1,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": message,
                    }
                ],
            }
        },
        subresource="status",
    )


async def test_without_kuberay_training_runs_in_a_batch_job(
    kube: KubeClient,
    operator: Any,
    eventually: Eventually,
) -> None:
    await kube.create(recmodel("books", [{"name": "cpu-openvino"}]))
    job = await eventually(lambda: kube.get(res.JOBS, NS, "books-g1-a1"), "the fallback Job")
    validate_object(job)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["recops", "train", "--config"]
    status = await status_of(kube, res.TRAININGRUNS, "books-g1")
    assert status["jobKind"] == "Job" and "rayJobId" not in status
    await kube.patch(res.JOBS, NS, "books-g1-a1", {"status": {"active": 1}}, subresource="status")

    async def running() -> bool:
        return (await status_of(kube, res.TRAININGRUNS, "books-g1")).get("phase") == "Running"

    await eventually(running, "phase Running")


async def test_failed_jobs_are_retried_up_to_the_backoff_limit_then_explained(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.create(training_run("books-manual", {"recModel": "books", "backoffLimit": 1}))
    await eventually(lambda: kube.get(res.JOBS, NS, "books-manual-a1"), "attempt 1")
    await fail_job(kube, "books-manual-a1", "Pod books-manual-a1-x: OOMKilled (exit 137)")
    await eventually(lambda: kube.get(res.JOBS, NS, "books-manual-a2"), "attempt 2")
    status = await status_of(kube, res.TRAININGRUNS, "books-manual")
    assert status["attempts"] == 2 and "OOMKilled" in status["message"]
    await fail_job(kube, "books-manual-a2", "Pod books-manual-a2-y: OOMKilled (exit 137)")

    async def failed() -> dict[str, Any] | None:
        s = await status_of(kube, res.TRAININGRUNS, "books-manual")
        return s if s.get("phase") == "Failed" else None

    status = await eventually(failed, "phase Failed")
    assert status["reason"] == "JobFailed"
    trained = condition(status, "Trained")
    assert trained["status"] == "False" and "books-manual-a2-y: OOMKilled" in trained["message"]
    assert condition(status, "Ready")["status"] == "False"
    jobs = [
        j["metadata"]["name"]
        for j in await kube.list(res.JOBS, NS)
        if j["metadata"]["labels"].get("recops.io/training-run") == "books-manual"
    ]
    assert sorted(jobs) == ["books-manual-a1", "books-manual-a2"]
    events = [
        e
        for e in await kube.list(res.EVENTS, NS)
        if e.get("involvedObject", {}).get("name") == "books-manual"
    ]
    assert any(e["reason"] == "JobFailed" and e["type"] == "Warning" for e in events)


@pytest.mark.usefixtures("unadmitted")
async def test_a_job_recorded_before_a_crash_is_created_once_under_that_name(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    # The status an operator writes just before it dies, before creating the Job.
    await kube.create(
        training_run(
            "books-crashed",
            {"recModel": "books"},
            {
                "phase": "Pending",
                "reason": "Submitting",
                "jobKind": "Job",
                "jobName": "books-crashed-a1",
                "attempts": 1,
            },
        )
    )
    await eventually(lambda: kube.get(res.JOBS, NS, "books-crashed-a1"), "the recorded Job")

    async def pending_with_job() -> bool:
        s = await status_of(kube, res.TRAININGRUNS, "books-crashed")
        return condition(s, "JobSubmitted").get("status") == "True"

    await eventually(pending_with_job, "JobSubmitted")
    jobs = [
        j["metadata"]["name"]
        for j in await kube.list(res.JOBS, NS)
        if j["metadata"]["labels"].get("recops.io/training-run") == "books-crashed"
    ]
    assert jobs == ["books-crashed-a1"]


@pytest.mark.usefixtures("unadmitted")
async def test_an_invalid_recmodel_gets_a_condition_naming_the_field_until_fixed(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.create(recmodel("broken", [{"name": "gpu-tensorrt", "replicaz": 2}]))

    async def refused() -> dict[str, Any] | None:
        s = await status_of(kube, res.RECMODELS, "broken")
        return s if condition(s, "SpecValid").get("reason") == "InvalidSpec" else None

    status = await eventually(refused, "an InvalidSpec condition")
    message = condition(status, "SpecValid")["message"]
    assert "spec.targets[0].replicaz" in message
    assert "spec.targets[0]: target gpu-tensorrt runs on a GPU" not in message  # one at a time
    assert status["phase"] == "Failed"
    assert condition(status, "Ready")["status"] == "False"
    assert await kube.get(res.TRAININGRUNS, NS, "broken-g1") is None

    await kube.patch(res.RECMODELS, NS, "broken", {"spec": {"targets": [{"name": "gpu-tensorrt"}]}})

    async def still_refused() -> str | None:
        s = await status_of(kube, res.RECMODELS, "broken")
        msg = condition(s, "SpecValid").get("message", "")
        return msg if "resources.gpu to at least 1" in msg else None

    assert "spec.targets[0]" in await eventually(still_refused, "the GPU message")
    await kube.patch(
        res.RECMODELS,
        NS,
        "broken",
        {"spec": {"targets": [{"name": "gpu-tensorrt", "resources": {"gpu": 1}}]}},
    )
    await eventually(lambda: kube.get(res.TRAININGRUNS, NS, "broken-g3"), "training after the fix")
    status = await status_of(kube, res.RECMODELS, "broken")
    assert condition(status, "SpecValid")["status"] == "True"


@pytest.mark.usefixtures("unadmitted")
async def test_an_invalid_training_run_is_refused_not_retried(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.create(training_run("books-typo", {"recModel": "books", "backofLimit": 3}))

    async def refused() -> dict[str, Any] | None:
        s = await status_of(kube, res.TRAININGRUNS, "books-typo")
        return s if s.get("reason") == "InvalidSpec" else None

    status = await eventually(refused, "InvalidSpec")
    assert status["phase"] == "Failed"
    assert (
        "spec.backofLimit: unknown field; check the spelling against `kubectl explain`"
        in condition(status, "SpecValid")["message"]
    )
    assert await kube.get(res.JOBS, NS, "books-typo-a1") is None


@pytest.mark.usefixtures("unadmitted")
async def test_serving_skips_add_ons_the_cluster_lacks(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    # A RecModel restored with its status (e.g. from a backup): version 7 is already built.
    engine = {
        "target": "cpu-openvino",
        "artifactUri": "/artifacts/ml/shelf/7/cpu-openvino",
        "sha256": "0" * 64,
    }
    obj = recmodel("shelf", [{"name": "cpu-openvino"}])
    obj["status"] = {"stableVersion": "7", "versions": [{"version": "7", "engines": [engine]}]}
    await kube.create(obj)
    await eventually(lambda: kube.get(res.DEPLOYMENTS, NS, "shelf-7-cpu-openvino"), "Deployment")
    await eventually(lambda: kube.get(res.GRPCROUTES, NS, "shelf"), "the GRPCRoute")
    assert await kube.get(res.SERVICEMONITORS, NS, "shelf") is None
    assert await kube.get(res.TRAININGRUNS, NS, "shelf-g1") is None  # it has a version
