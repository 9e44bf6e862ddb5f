"""The RecModel controller's side of traffic: role Services, a user's own GRPCRoute (its
weights the RecModel's between rollouts, the Rollout's during one), and the replaced
stable version kept for scaleDownDelaySeconds after a promotion.

Only the RecModel controller runs; the Rollouts' statuses are written here, as the Rollout
controller would write them, so each step of a rollout can be looked at on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_operator.settings import OperatorSettings
from recops_testkit.background import BackgroundOperator
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.schemas import validate_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
TARGET = "cpu-onnxruntime"
DELAY_S = 3


def version(v: str) -> dict[str, Any]:
    return {
        "version": v,
        "trainingRun": f"shows-r{v}",
        "engines": [{"target": TARGET, "artifactUri": f"/a/{v}", "sha256": "0" * 64}],
    }


def user_route() -> dict[str, Any]:
    """A route the user owns: one rule for the RecModel's roles, one for another service."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "public", "namespace": NS},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [
                {
                    "matches": [{"method": {"service": "recops.v1.Recommender"}}],
                    "backendRefs": [
                        {"name": f"shows-{TARGET}-stable", "port": 8500, "weight": 100},
                        {"name": f"shows-{TARGET}-canary", "port": 8500, "weight": 0},
                    ],
                },
                {
                    "matches": [{"method": {"service": "search.v1.Search"}}],
                    "backendRefs": [{"name": "search", "port": 9000, "weight": 1}],
                },
            ],
        },
    }


def rollout_status(phase: str, stable_w: int, cand_w: int, promoted_at: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "weights": {"stable": stable_w, "candidate": cand_w},
        "stableVersion": "1",
        "candidateVersion": "2",
    }
    if promoted_at:
        status["history"] = [
            {"time": promoted_at, "stepIndex": 3, "action": "promote", "reason": "Promoted"}
        ]
    return status


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shows(kube: KubeClient) -> AsyncIterator[None]:
    """A RecModel serving version 1 with candidate 2, a user's route, and a Rollout: made
    before the operator starts, so its first look sees them all."""
    await kube.create(
        {
            "apiVersion": "recops.io/v1alpha1",
            "kind": "RecModel",
            "metadata": {"name": "shows", "namespace": NS},
            "spec": {
                "dataset": {"format": "movielens-1m"},
                "targets": [{"name": TARGET}],
                "rolloutPolicy": {
                    "trafficRouting": {"grpcRoute": "public"},
                    "scaleDownDelaySeconds": DELAY_S,
                },
            },
        }
    )
    await kube.patch(
        res.RECMODELS,
        NS,
        "shows",
        {
            "status": {
                "stableVersion": "1",
                "candidateVersion": "2",
                "versions": [version("1"), version("2")],
            }
        },
        subresource="status",
    )
    await kube.create(user_route())
    await kube.create(
        {
            "apiVersion": "recops.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "shows-2", "namespace": NS},
            "spec": {"recModel": "shows", "candidateVersion": "2"},
        }
    )
    yield


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def recmodel_controller(
    api: ApiServerEmulator, shows: None
) -> AsyncIterator[BackgroundOperator]:
    settings = OperatorSettings(
        standalone=True, liveness_endpoint=None, resync_interval=0.5, log_format="plain"
    )
    op = BackgroundOperator(str(api.url), settings, ("recops_operator.controllers.recmodel",))
    await asyncio.to_thread(op.start)
    yield op
    await asyncio.to_thread(op.stop)


async def route_split(kube: KubeClient) -> tuple[dict[str, int], dict[str, int]]:
    route = await kube.get(res.GRPCROUTES, NS, "public")
    assert route is not None
    mine, other = route["spec"]["rules"]
    return (
        {b["name"].rsplit("-", 1)[1]: b["weight"] for b in mine["backendRefs"]},
        {b["name"]: b["weight"] for b in other["backendRefs"]},
    )


async def selects(kube: KubeClient, role: str) -> str | None:
    svc = await kube.get(res.SERVICES, NS, f"shows-{TARGET}-{role}")
    return None if svc is None else str(svc["spec"]["selector"]["recops.io/version"])


async def test_role_services_follow_the_versions_and_the_users_route_the_rollout(
    kube: KubeClient,
    recmodel_controller: BackgroundOperator,
    eventually: Eventually,
) -> None:
    async def roles() -> tuple[str | None, str | None] | None:
        got = (await selects(kube, "stable"), await selects(kube, "canary"))
        return got if got == ("1", "2") else None

    await eventually(roles, "the stable and canary Services")
    for role in ("stable", "canary"):
        svc = await kube.get(res.SERVICES, NS, f"shows-{TARGET}-{role}")
        assert svc is not None
        validate_object(svc)
        # Not scraped twice: the ServiceMonitor selects the "serving" Services only.
        assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "routing"
    # The Rollout moves the weights (its controller alone writes them while it runs: here
    # the test, as it would) and records them; the RecModel controller leaves them be.
    steered = user_route()
    steered["spec"]["rules"][0]["backendRefs"][0]["weight"] = 70
    steered["spec"]["rules"][0]["backendRefs"][1]["weight"] = 30
    await kube.patch(res.GRPCROUTES, NS, "public", {"spec": {"rules": steered["spec"]["rules"]}})
    await kube.patch(
        res.ROLLOUTS,
        NS,
        "shows-2",
        {"status": rollout_status("Progressing", 70, 30)},
        subresource="status",
    )

    async def split(stable: int, canary: int) -> bool:
        mine, other = await route_split(kube)
        assert other == {"search": 1}  # the user's other backends are never touched
        return mine == {"stable": stable, "canary": canary}

    await asyncio.sleep(2)  # several resyncs of the RecModel controller
    assert await split(70, 30), "the RecModel controller moved the Rollout's weights"
    route = await kube.get(res.GRPCROUTES, NS, "public")
    assert route is not None
    validate_object(route)
    # Promotion: version 2 becomes stable; version 1 keeps its pods for the delay.
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await kube.patch(
        res.ROLLOUTS,
        NS,
        "shows-2",
        {"status": rollout_status("Promoted", 0, 100, promoted_at=now)},
        subresource="status",
    )

    async def promoted() -> dict[str, Any] | None:
        status = (await kube.get(res.RECMODELS, NS, "shows") or {}).get("status") or {}
        return status if status.get("stableVersion") == "2" else None

    status = await eventually(promoted, "version 2 stable")
    assert status["retiring"][0]["version"] == "1"
    assert await kube.get(res.DEPLOYMENTS, NS, f"shows-1-{TARGET}") is not None
    assert await selects(kube, "stable") == "2" and await selects(kube, "canary") == "2"
    await eventually(lambda: split(100, 0), "the user's route back to 100/0 on the new stable")

    async def scaled_down() -> bool:
        return await kube.get(res.DEPLOYMENTS, NS, f"shows-1-{TARGET}") is None

    await eventually(
        scaled_down, "version 1's Deployment deleted after the delay", timeout=DELAY_S + 20
    )
    assert await kube.get(res.DEPLOYMENTS, NS, f"shows-2-{TARGET}") is not None

    async def retired() -> dict[str, Any] | None:
        # The Deployment goes first, then the status write that stops listing version 1.
        status = await promoted()
        return status if status is not None and "retiring" not in status else None

    await eventually(retired, "version 1 no longer listed as retiring")
    events = await kube.list(res.EVENTS, NS)
    reasons = {e["reason"] for e in events if e.get("involvedObject", {}).get("name") == "shows"}
    assert "ScaledDown" in reasons and "TrafficRoutingNotApplied" not in reasons


async def test_a_missing_route_is_reported_not_created(
    kube: KubeClient, recmodel_controller: BackgroundOperator, eventually: Eventually
) -> None:
    policy = {"rolloutPolicy": {"trafficRouting": {"grpcRoute": "nowhere"}}}
    await kube.patch(res.RECMODELS, NS, "shows", {"spec": policy})

    async def warned() -> dict[str, Any] | None:
        for e in await kube.list(res.EVENTS, NS):
            if e["reason"] == "TrafficRoutingNotApplied":
                return e
        return None

    event = await eventually(warned, "a TrafficRoutingNotApplied event")
    assert "GRPCRoute nowhere (trafficRouting.grpcRoute) does not exist" in event["message"]
    assert f"shows-{TARGET}-stable (port 8500)" in event["message"]
    assert await kube.get(res.GRPCROUTES, NS, "nowhere") is None
