"""The service over gRPC and JSON/HTTP: answers, exclusions, fallbacks, feedback, metrics."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, num_items, user_id
from recops_testkit.serve_helpers import grpc_target, http_url, metric, metrics_text

HISTORY = [item_id(i) for i in (3, 17, 42, 99)]


async def test_grpc_and_http_give_the_same_top_k(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        answer = await client.recommend(user_id(1), history=HISTORY, k=7)
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            http_url(server, "/v1/recommend"),
            json={"userId": user_id(1), "history": HISTORY, "k": 7},
        )
    assert reply.status_code == 200
    body = reply.json()
    assert [i.item_id for i in answer.items] == [i["itemId"] for i in body["items"]]
    assert len(answer.items) == 7
    scores = [i.score for i in answer.items]
    assert scores == sorted(scores, reverse=True)
    assert (answer.version, answer.target, answer.model_version) == ("v1", "cpu-onnxruntime", "1")
    assert body["version"] == "v1" and answer.fallback_reason == ""


async def test_exclusions_are_never_recommended(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        first = await client.recommend(user_id(2), history=HISTORY, k=20)
        banned = [first.items[0].item_id, first.items[3].item_id]
        second = await client.recommend(
            user_id(2), history=HISTORY, k=20, exclude_seen=True, exclude_items=banned
        )
    returned = {i.item_id for i in second.items}
    assert len(second.items) == 20
    assert not returned & set(banned)
    assert not returned & set(HISTORY)


async def test_cold_start_and_unknown_items_fall_back_and_are_counted(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        stranger = await client.recommend("no-such-user", k=5)
        unknown_only = await client.recommend(user_id(3), history=["nope-1", "nope-2"], k=5)
        mixed = await client.recommend(user_id(3), history=["nope-3", *HISTORY], k=5)
    assert stranger.fallback_reason == "unknown_user" and len(stranger.items) == 5
    assert unknown_only.fallback_reason == "unknown_items"
    assert mixed.fallback_reason == ""
    text = await metrics_text(server)
    assert metric(text, "recops_fallbacks_total", version="v1", reason="unknown_user") == 1
    assert metric(text, "recops_unknown_items_total", version="v1") == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": user_id(1), "history": HISTORY, "k": 5000}, "k"),
        ({"history": []}, "user_id"),
        ({"userId": user_id(1), "history": ["ok", ""]}, "history[1]"),
        ({"userId": user_id(1), "history": "3,17"}, "history"),
        ({"userId": user_id(1), "history": HISTORY, "excludeSeen": "yes"}, "excludeSeen"),
    ],
)
async def test_malformed_requests_name_the_field(start_server, body: dict, field: str) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        reply = await http.post(http_url(server, "/v1/recommend"), json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["message"].startswith(field)


async def test_grpc_invalid_argument_names_the_field(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.recommend(user_id(1), history=HISTORY, k=-3)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "k:" in (caught.value.details() or "")
    text = await metrics_text(server)
    assert metric(text, "recops_requests_total", code="INVALID_ARGUMENT") == 1


async def test_clicks_on_recommended_items_count_as_online_hits(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        answer = await client.recommend(user_id(4), history=HISTORY, k=5)
        hit = await client.feedback(
            user_id(4), answer.items[2].item_id, "click", request_id=answer.request_id
        )
        await client.feedback(
            user_id(4), answer.items[2].item_id, "click", request_id=answer.request_id
        )
        miss = await client.feedback(
            user_id(4), item_id(150), "click", request_id=answer.request_id
        )
        await client.feedback(
            user_id(4), answer.items[0].item_id, "impression", request_id=answer.request_id
        )
    assert hit.recommended and hit.version == "v1"
    assert not miss.recommended
    text = await metrics_text(server)
    assert metric(text, "recops_online_hits_total", version="v1") == 1  # a repeat is one hit
    assert metric(text, "recops_recommendations_total", version="v1") == 1
    assert metric(text, "recops_feedback_events_total", version="v1", event="click") == 3
    assert metric(text, "recops_feedback_events_total", version="v1", event="impression") == 1


async def test_feedback_feeds_the_history_store(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        before = await client.recommend(user_id(5), k=5)
        for item in HISTORY:
            await client.feedback(user_id(5), item, "watch")
        after = await client.recommend(user_id(5), k=5)
        explicit = await client.recommend(user_id(5), history=HISTORY, k=5)
    assert before.fallback_reason == "empty_history"
    assert after.fallback_reason == ""
    assert [i.item_id for i in after.items] == [i.item_id for i in explicit.items]


async def test_model_info_health_and_reflection(start_server) -> None:
    server = await start_server(engines={"v1": "v1", "v2": "v2"}, weights={"v1": 80, "v2": 20})
    async with RecommenderClient(grpc_target(server)) as client:
        info = await client.model_info()
    assert [(v.version, v.weight, v.model_version, v.ready) for v in info.versions] == [
        ("v1", 80, "1", True),
        ("v2", 20, "2", True),
    ]
    async with grpc.aio.insecure_channel(grpc_target(server)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "recops.v1.Recommender", "recops.v1.Recommender/v2"):
            status = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name async for r in replies for s in r.list_services_response.service}
    assert {"recops.v1.Recommender", "grpc.health.v1.Health"} <= names
    async with httpx.AsyncClient() as http:
        assert (await http.get(http_url(server, "/healthz"))).status_code == 200
        ready = await http.get(http_url(server, "/readyz"))
    assert ready.status_code == 200 and ready.json() == {"ready": True}


async def test_metrics_expose_the_contract_names(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        await client.recommend(user_id(1), history=HISTORY, k=5)
    text = await metrics_text(server)
    for name in (
        'recops_requests_total{code="OK",target="cpu-onnxruntime",version="v1"}',
        'recops_request_latency_seconds_bucket{le="0.05",target="cpu-onnxruntime",version="v1"}',
        'recops_batch_size_bucket{le="1.0",target="cpu-onnxruntime",version="v1"}',
        'recops_queue_depth{version="v1"}',
        'recops_recommendations_total{target="cpu-onnxruntime",version="v1"}',
        'recops_model_info{model_version="1",target="cpu-onnxruntime",version="v1"} 1.0',
    ):
        assert name in text


async def test_a_mixed_batch_scores_each_request_as_if_alone(start_server) -> None:
    import numpy as np

    from recops_runtime.scoring.model_version import NO_ITEMS, ScoreJob

    server = await start_server()
    version = server.registry.versions["v1"]
    rng = np.random.default_rng(0)
    jobs = [
        ScoreJob(
            int(rng.integers(0, 300)),
            rng.integers(1, version.num_items + 1, size=int(length)).astype(np.int64),
            NO_ITEMS if length % 2 else np.array([1, 2, 3], dtype=np.int64),
            int(rng.integers(1, 30)),
        )
        for length in rng.integers(1, 41, size=24)
    ]
    together = version.run_batch(jobs)
    for job, result in zip(jobs, together, strict=True):
        (alone,) = version.run_batch([job])
        assert result.items.tolist() == alone.items.tolist()
        np.testing.assert_allclose(result.scores, alone.scores, rtol=1e-5, atol=1e-5)
        assert len(result.items) == job.k and not set(result.items.tolist()) & set(job.exclude)


async def test_http_feedback_and_model_info(start_server) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        answer = (
            await http.post(
                http_url(server, "/v1/recommend"),
                json={"userId": user_id(6), "history": HISTORY, "k": 3},
            )
        ).json()
        click = {
            "requestId": answer["requestId"],
            "userId": user_id(6),
            "itemId": answer["items"][1]["itemId"],
        }
        bad = await http.post(http_url(server, "/v1/feedback"), json={**click, "event": "like"})
        good = await http.post(http_url(server, "/v1/feedback"), json={**click, "event": "click"})
        info = (await http.get(http_url(server, "/v1/model-info"))).json()
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("event")
    assert good.status_code == 200 and good.json() == {"recommended": True, "version": "v1"}
    assert [v["version"] for v in info["versions"]] == ["v1"] and info["sticky"] is False


async def test_engine_workers_score_side_by_side_with_the_same_answers(start_server) -> None:
    import asyncio
    import threading

    from recops_runtime.serve_settings import BatchingSettings

    single = await start_server(batching=BatchingSettings(engine_workers=1))
    double = await start_server(batching=BatchingSettings(engine_workers=2, engine_threads=1))
    version = double.registry.versions["v1"]
    assert len(version.engines) == 2
    calls: list[int] = [0, 0]
    lock = threading.Lock()
    for n, engine in enumerate(version.engines):
        scored = engine.score

        def counted(users, history, n=n, scored=scored):  # type: ignore[no-untyped-def]
            with lock:
                calls[n] += 1
            return scored(users, history)

        engine.score = counted  # type: ignore[method-assign]
    histories = [
        [item_id((u * 7 + i) % num_items() + 1) for i in range(u % 15 + 1)] for u in range(120)
    ]

    async def answers(server) -> list[list[str]]:  # type: ignore[no-untyped-def]
        async with RecommenderClient(grpc_target(server)) as client:
            replies = await asyncio.gather(
                *(client.recommend(user_id(u % 50 + 1), history=h) for u, h in enumerate(histories))
            )
        return [[item.item_id for item in reply.items] for reply in replies]

    assert await answers(double) == await answers(single)
    assert calls[0] > 0 and calls[1] > 0, calls
