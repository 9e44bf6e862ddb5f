"""Status a user can trust: every kind's status and each of its conditions name the spec
generation they were judged from, and a condition's lastTransitionTime moves only when its
status flips. Reconciles run directly, on a clock of the test's, so "an hour later" is
exact: a second reconcile with nothing new writes nothing, not even a new time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.controllers import recmodel, rollout, trainingrun
from recops_operator.controllers.context import OperatorContext
from recops_testkit.direct import events_recorded, operator_context
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object

pytestmark = pytest.mark.asyncio(loop_scope="module")
NS = "ml"
TARGET = "cpu-openvino"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def ctx(api: ApiServerEmulator) -> AsyncIterator[OperatorContext]:
    with events_recorded():
        async with operator_context(str(api.url)) as context:
            yield context


def stored(api: ApiServerEmulator, resource: res.Resource, name: str) -> dict[str, Any]:
    return api.stored(resource, NS)[name]


def assert_generation(obj: dict[str, Any], generation: int) -> None:
    status = obj["status"]
    assert obj["metadata"]["generation"] == generation
    assert status["observedGeneration"] == generation
    stale = [c["type"] for c in status["conditions"] if c.get("observedGeneration") != generation]
    assert stale == [], f"conditions not judged from generation {generation}"


def transition_times(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["lastTransitionTime"]) for c in obj["status"]["conditions"]}


async def test_a_recmodel_reconciled_again_keeps_its_status_and_times(
    api: ApiServerEmulator, kube: Any, ctx: OperatorContext
) -> None:
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": TARGET}],
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        "training": {"storageClaim": "training-runs"},
    }
    await kube.create(custom_object("RecModel", "movies", NS, spec))
    engine = {"target": TARGET, "artifactUri": "/artifacts/1", "sha256": "0" * 64}
    status = {"stableVersion": "1", "versions": [{"version": "1", "engines": [engine]}]}
    await kube.patch(res.RECMODELS, NS, "movies", {"status": status}, subresource="status")

    ctx.clock = lambda: T0
    await recmodel.reconcile(ctx, NS, "movies")
    first = stored(api, res.RECMODELS, "movies")
    assert_generation(first, 1)
    ctx.clock = lambda: LATER
    await recmodel.reconcile(ctx, NS, "movies")
    again = stored(api, res.RECMODELS, "movies")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"], (
        "nothing changed, nothing written"
    )

    # A spec change: every condition is judged again from generation 2; none flips here,
    # so none gets a new transition time.
    await kube.patch(
        res.RECMODELS, NS, "movies", {"spec": {"targets": [{"name": TARGET, "replicas": 2}]}}
    )
    await recmodel.reconcile(ctx, NS, "movies")
    changed = stored(api, res.RECMODELS, "movies")
    assert_generation(changed, 2)
    assert transition_times(changed) == transition_times(first)


async def test_a_training_run_reconciled_again_keeps_its_times(
    api: ApiServerEmulator, kube: Any, ctx: OperatorContext
) -> None:
    await kube.create(custom_object("TrainingRun", "movies-manual", NS, {"recModel": "movies"}))
    ctx.clock = lambda: T0
    await trainingrun.reconcile(ctx, NS, "movies-manual")
    first = stored(api, res.TRAININGRUNS, "movies-manual")
    assert first["status"]["phase"] == "Pending" and first["status"]["observedGeneration"] == 1
    ctx.clock = lambda: LATER
    await trainingrun.reconcile(ctx, NS, "movies-manual")
    again = stored(api, res.TRAININGRUNS, "movies-manual")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert transition_times(again) == transition_times(first)
    assert all(c["observedGeneration"] == 1 for c in again["status"]["conditions"])


async def test_a_rollout_reconciled_again_keeps_its_times(
    api: ApiServerEmulator, kube: Any, ctx: OperatorContext
) -> None:
    # Version 2 is the candidate, its pods are not ready: the rollout waits at step 0.
    engines = [
        {"target": TARGET, "artifactUri": f"/artifacts/{v}", "sha256": "0" * 64} for v in "12"
    ]
    status = {
        "stableVersion": "1",
        "candidateVersion": "2",
        "versions": [{"version": v, "engines": [e]} for v, e in zip("12", engines, strict=True)],
    }
    await kube.patch(res.RECMODELS, NS, "movies", {"status": status}, subresource="status")
    await recmodel.reconcile(ctx, NS, "movies")
    await kube.create(
        custom_object("Rollout", "movies-2", NS, {"recModel": "movies", "candidateVersion": "2"})
    )
    ctx.clock = lambda: T0
    await rollout.reconcile(ctx, NS, "movies-2")
    first = stored(api, res.ROLLOUTS, "movies-2")
    assert first["status"]["phase"] == "Progressing"
    assert_generation(first, 1)
    ctx.clock = lambda: LATER
    await rollout.reconcile(ctx, NS, "movies-2")
    again = stored(api, res.ROLLOUTS, "movies-2")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert transition_times(again) == transition_times(first)
    assert_generation(again, 1)
