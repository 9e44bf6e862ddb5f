"""A Rollout survives what happens to the API server and to the operator under it: the
operator stopped and started again at each of the Rollout's phases, the API server
restarted in the middle (every connection closed, the store kept), and requests whose
connection drops before or after the server acted on them. Each time the Rollout resumes
at the step it had reached, does no step twice, and ends where a calm one ends: paused
for promotion at the last step, the route at the last step's weights.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_operator.render.common import object_name
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.listener import Listener
from recops_testkit.manifests import custom_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
TARGET = "cpu-openvino"
PAUSE = "3s"
STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": PAUSE}},
    {"setWeight": 50},
    {"pause": {"duration": PAUSE}},
    {"setWeight": 80},
    {"pause": {}},
]
LAST_STEP = len(STEPS) - 1
WITHIN = 60.0  # seconds; a restarted operator relists and resumes at its resync interval


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def listener() -> AsyncIterator[Listener]:
    async with ApiServerEmulator() as emulator, Listener(emulator) as listener:
        yield listener


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(listener: Listener) -> ApiServerEmulator:
    return listener.api


def engine(version: str) -> dict[str, Any]:
    return {"target": TARGET, "artifactUri": f"/artifacts/{version}", "sha256": "0" * 64}


def rollout_status(api: ApiServerEmulator, name: str) -> dict[str, Any]:
    return dict((api.stored(res.ROLLOUTS, NS).get(name) or {}).get("status") or {})


def route_weights(api: ApiServerEmulator, model: str) -> dict[str, int]:
    route = api.stored(res.GRPCROUTES, NS).get(model) or {"spec": {"rules": [{}]}}
    return {
        b["name"]: b.get("weight", 1) for b in route["spec"]["rules"][0].get("backendRefs") or []
    }


async def serving(
    api: ApiServerEmulator, kube: KubeClient, model: str, eventually: Eventually
) -> None:
    """A RecModel serving version 1 with version 2 built (as a passed training leaves it),
    its candidate's pods ready."""
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": TARGET}],
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        "rolloutPolicy": {"steps": STEPS},
    }
    await kube.create(custom_object("RecModel", model, NS, spec))
    status = {
        "stableVersion": "1",
        "candidateVersion": "2",
        "versions": [{"version": v, "engines": [engine(v)]} for v in ("1", "2")],
    }
    await kube.patch(res.RECMODELS, NS, model, {"status": status}, subresource="status")
    candidate = object_name(model, "2", TARGET)

    async def deployed() -> bool:
        return candidate in api.stored(res.DEPLOYMENTS, NS) and bool(route_weights(api, model))

    await eventually(deployed, f"{model}'s Deployments and route", timeout=WITHIN)
    await kube.patch(
        res.DEPLOYMENTS, NS, candidate, {"status": {"readyReplicas": 1}}, subresource="status"
    )


async def at_step(
    api: ApiServerEmulator, name: str, step: int, phase: str, eventually: Eventually
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        s = rollout_status(api, name)
        return s if (s.get("currentStepIndex"), s.get("phase")) == (step, phase) else None

    result: dict[str, Any] = await eventually(
        reached, f"{name} {phase} at step {step}", timeout=WITHIN
    )
    return result


async def finished(api: ApiServerEmulator, model: str, eventually: Eventually) -> None:
    """The calm end state: paused for promotion at the last step, the route at 20/80, and
    each decision of the history taken once."""
    name = f"{model}-2"
    status = await at_step(api, name, LAST_STEP, "Paused", eventually)
    assert status["weights"] == {"stable": 20, "candidate": 80}
    assert route_weights(api, model) == {
        object_name(model, "1", TARGET): 20,
        object_name(model, "2", TARGET): 80,
    }
    taken = Counter((d["stepIndex"], d["action"], d["reason"]) for d in status["history"])
    assert [d for d, n in taken.items() if n > 1] == [], f"a step done twice: {taken}"
    weights_set = [d["stepIndex"] for d in status["history"] if d["action"] == "setWeights"]
    assert weights_set == [1, 3, 5]  # recorded on entering the step after


async def start_rollout(kube: KubeClient, model: str) -> None:
    spec = {"recModel": model, "candidateVersion": "2"}
    await kube.create(custom_object("Rollout", f"{model}-2", NS, spec))


async def test_without_faults_a_rollout_pauses_for_promotion_at_its_last_step(
    api: ApiServerEmulator, kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    """The baseline each fault is compared with."""
    await serving(api, kube, "calm", eventually)
    await start_rollout(kube, "calm")
    await finished(api, "calm", eventually)


async def test_the_operator_restarted_at_each_phase_resumes_at_the_same_step(
    api: ApiServerEmulator, kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await serving(api, kube, "books", eventually)
    candidate = object_name("books", "2", TARGET)
    await kube.patch(
        res.DEPLOYMENTS, NS, candidate, {"status": {"readyReplicas": 0}}, subresource="status"
    )
    await start_rollout(kube, "books")
    # Progressing, held at the first step: the candidate's pods are not ready.
    waiting = await at_step(api, "books-2", 0, "Progressing", eventually)
    await operator.stop()
    await operator.start()
    await asyncio.sleep(2)  # several resync periods of the new operator
    assert rollout_status(api, "books-2")["history"] == waiting["history"]
    await kube.patch(
        res.DEPLOYMENTS, NS, candidate, {"status": {"readyReplicas": 1}}, subresource="status"
    )
    # Paused for a duration: the new operator ends the pause the old one started.
    paused = await at_step(api, "books-2", 1, "Paused", eventually)
    await operator.stop()
    await operator.start()
    resumed = await at_step(api, "books-2", 3, "Paused", eventually)
    assert resumed["history"][: len(paused["history"])] == paused["history"]
    # Paused until promoted: nothing moves across a restart.
    last = await at_step(api, "books-2", LAST_STEP, "Paused", eventually)
    await operator.stop()
    await operator.start()
    await asyncio.sleep(2)
    assert rollout_status(api, "books-2")["history"] == last["history"]
    await finished(api, "books", eventually)


async def test_the_api_server_restarted_mid_rollout(
    api: ApiServerEmulator,
    listener: Listener,
    kube: KubeClient,
    operator: Any,
    eventually: Eventually,
) -> None:
    await serving(api, kube, "music", eventually)
    await start_rollout(kube, "music")
    await at_step(api, "music-2", 1, "Paused", eventually)
    await listener.stop()  # every watch and request in flight is cut; new ones are refused
    await asyncio.sleep(2)
    await listener.start()
    await finished(api, "music", eventually)


@pytest.mark.parametrize("applied", [False, True], ids=["before-it-acted", "after-it-acted"])
async def test_connections_dropped_mid_request(
    api: ApiServerEmulator, kube: KubeClient, operator: Any, eventually: Eventually, applied: bool
) -> None:
    """The route patch and the status write of one step each lose their connection: the
    server acted on them or not, the operator cannot tell, and does the step once."""
    model = f"films-{'applied' if applied else 'unapplied'}"
    await serving(api, kube, model, eventually)
    route = api.faults.dropped("grpcroutes", "patch", applied=applied)
    status = api.faults.dropped("rollouts", "patch", applied=applied, subresource="status")
    await start_rollout(kube, model)
    await finished(api, model, eventually)
    assert (route.hits, status.hits) == (1, 1), "both faults fired"
