"""One writer for the route's weights: a RecModel resync at every step of a Rollout never
moves them back.

The Rollout controller writes the GRPCRoute's weights, then its status; the RecModel
controller renders the same route on every resync. Here the two controllers' reconciles
run in one test, in a fixed order: the Rollout's client calls a RecModel reconcile right
after each route patch (before the status write) and right after each status write
(before the next route patch), the two orders in which a resync can fall. After each the
route must still hold the Rollout's latest weights, the candidate's share must never
shrink, and once the status is written the route must match it. With the RecModel
controller writing weights too (the second writer), the resync after a route patch puts
the previous step's weights back and this test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient, KubeConnection, Obj
from recops_operator.clients.mlflow import MlflowRestClient
from recops_operator.controllers import (
    recmodel as recmodel_controller,
    rollout as rollout_controller,
)
from recops_operator.controllers.context import OperatorContext
from recops_operator.render.common import object_name
from recops_testkit.direct import events_recorded, operator_context
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object

pytestmark = pytest.mark.asyncio(loop_scope="module")
NS = "ml"
TARGET = "cpu-openvino"
STEPS = [{"setWeight": 10}, {"setWeight": 40}, {"setWeight": 70}]
MAX_RECONCILES = 20


class Champion(MlflowRestClient):
    """MLflow's alias move, answered in-process: the test is about the route."""

    def __init__(self) -> None:
        super().__init__()
        self.moved: list[str] = []

    async def move_champion(self, tracking_uri: str, model: str, version: str) -> None:
        self.moved.append(version)


class ResyncingKube(KubeClient):
    """The Rollout controller's client: runs ``resync`` right after each route patch and
    each Rollout status write, as a RecModel timer firing at that moment would."""

    resync: Callable[[str], Awaitable[None]] | None = None

    async def patch(
        self,
        resource: res.Resource,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        result = await super().patch(resource, namespace, name, patch, subresource)
        if self.resync is not None:
            if resource == res.GRPCROUTES and subresource is None:
                await self.resync("after the route patch")
            elif resource == res.ROLLOUTS and subresource == "status":
                await self.resync("after the status write")
        return result


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def contexts(
    api: ApiServerEmulator,
) -> AsyncIterator[tuple[OperatorContext, OperatorContext, ResyncingKube]]:
    """The RecModel controller's context and the Rollout controller's, with its client."""
    url = str(api.url)
    hooked = ResyncingKube(KubeConnection(server=url))
    with events_recorded():
        async with (
            operator_context(url) as rm,
            operator_context(url, kube=hooked, mlflow=Champion()) as ro,
        ):
            yield rm, ro, hooked


def engine(version: str) -> dict[str, Any]:
    return {"target": TARGET, "artifactUri": f"/artifacts/{version}", "sha256": "0" * 64}


async def serve(kube: KubeClient, stable: str, candidate: str, versions: list[str]) -> None:
    """The RecModel's status as a finished training leaves it (engines built)."""
    status = {
        "stableVersion": stable,
        "candidateVersion": candidate,
        "versions": [{"version": v, "engines": [engine(v)]} for v in versions],
    }
    await kube.patch(res.RECMODELS, NS, "movies", {"status": status}, subresource="status")


async def ready(kube: KubeClient, version: str) -> None:
    name = object_name("movies", version, TARGET)
    await kube.patch(
        res.DEPLOYMENTS, NS, name, {"status": {"readyReplicas": 1}}, subresource="status"
    )


def weights_of(api: ApiServerEmulator) -> dict[str, int]:
    """The route's weight per version (read from the store, not through a client)."""
    route = api.stored(res.GRPCROUTES, NS)["movies"]
    prefix = "movies-"
    return {
        b["name"].removeprefix(prefix).removesuffix(f"-{TARGET}"): b.get("weight", 1)
        for b in route["spec"]["rules"][0]["backendRefs"]
    }


def rollout_status(api: ApiServerEmulator, name: str) -> dict[str, Any]:
    return dict(api.stored(res.ROLLOUTS, NS)[name].get("status") or {})


async def test_a_recmodel_resync_at_any_step_never_moves_the_weights_back(
    api: ApiServerEmulator,
    kube: KubeClient,
    contexts: tuple[OperatorContext, OperatorContext, ResyncingKube],
) -> None:
    rm_ctx, ro_ctx, hooked = contexts
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": TARGET}],
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        "rolloutPolicy": {"steps": STEPS},
    }
    await kube.create(custom_object("RecModel", "movies", NS, spec))
    await serve(kube, "1", "2", ["1", "2"])
    await recmodel_controller.reconcile(rm_ctx, NS, "movies")
    assert weights_of(api) == {"1": 100, "2": 0}
    await ready(kube, "2")
    await kube.create(
        custom_object("Rollout", "movies-2", NS, {"recModel": "movies", "candidateVersion": "2"})
    )

    seen: list[tuple[str, dict[str, int]]] = []

    async def resync(when: str) -> None:
        before = weights_of(api)
        await recmodel_controller.reconcile(rm_ctx, NS, "movies")
        after = weights_of(api)
        seen.append((when, after))
        assert after == before, f"a RecModel resync {when} moved the weights {before} -> {after}"
        if when == "after the status write":
            weights = rollout_status(api, "movies-2").get("weights") or {}
            stable, candidate = weights.get("stable"), weights.get("candidate")
            rm = api.stored(res.RECMODELS, NS)["movies"]["status"]
            if rm.get("stableVersion") == "1":  # before the RecModel follows the promotion
                assert after == {"1": stable, "2": candidate}, "the route matches the status"

    hooked.resync = resync
    try:
        for _ in range(MAX_RECONCILES):
            await rollout_controller.reconcile(ro_ctx, NS, "movies-2")
            if rollout_status(api, "movies-2").get("phase") == "Promoted":
                break
    finally:
        hooked.resync = None
    assert rollout_status(api, "movies-2")["phase"] == "Promoted"
    candidate_share = [w.get("2", 0) for _, w in seen]
    assert candidate_share == sorted(candidate_share), f"weights moved back: {seen}"
    assert {w.get("2") for _, w in seen} >= {10, 40, 70, 100}, "every step reached the route"
    assert any(when == "after the route patch" for when, _ in seen)

    await recmodel_controller.reconcile(rm_ctx, NS, "movies")
    rm = api.stored(res.RECMODELS, NS)["movies"]["status"]
    assert rm["stableVersion"] == "2" and rm.get("candidateVersion") is None
    assert weights_of(api)["2"] == 100


async def test_a_finished_rollout_leaves_the_next_ones_weights_alone(
    api: ApiServerEmulator,
    kube: KubeClient,
    contexts: tuple[OperatorContext, OperatorContext, ResyncingKube],
) -> None:
    """Version 3 rolls out while the Rollout that promoted version 2 is still there: the
    promoted one's timer must not put version 2 back at 100."""
    rm_ctx, ro_ctx, _ = contexts
    await serve(kube, "2", "3", ["1", "2", "3"])
    await recmodel_controller.reconcile(rm_ctx, NS, "movies")
    await ready(kube, "3")
    await kube.create(
        custom_object("Rollout", "movies-3", NS, {"recModel": "movies", "candidateVersion": "3"})
    )
    await rollout_controller.reconcile(ro_ctx, NS, "movies-3")
    assert weights_of(api)["2"] == 90 and weights_of(api)["3"] == 10
    await rollout_controller.reconcile(ro_ctx, NS, "movies-2")
    await recmodel_controller.reconcile(rm_ctx, NS, "movies")
    assert weights_of(api)["2"] == 90 and weights_of(api)["3"] == 10
