"""Replicas that share a Redis history store agree on a user's history."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator

import grpc
import pytest
import redis

from recops_cli.quickstart.processes import free_port
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.serve_helpers import grpc_target, metric, metrics_text


@pytest.fixture
def redis_server(tmp_path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make deb-deps installs it)")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield url, process
    if process.poll() is None:
        process.terminate()
        process.wait(10)


async def test_feedback_on_one_replica_shapes_answers_on_another(
    start_server, redis_server
) -> None:
    redis_url, _ = redis_server
    first = await start_server(redis_url=redis_url)
    second = await start_server(redis_url=redis_url)
    history = [item_id(i) for i in (11, 12, 13, 14)]
    async with (
        RecommenderClient(grpc_target(first)) as a,
        RecommenderClient(grpc_target(second)) as b,
    ):
        assert (await b.recommend(user_id(9), k=5)).fallback_reason == "empty_history"
        for item in history:
            await a.feedback(user_id(9), item, "click")
        await a.feedback(user_id(9), item_id(15), "impression")  # not consumed: not history
        from_store = await b.recommend(user_id(9), k=5)
        explicit = await b.recommend(user_id(9), history=history, k=5)
    assert from_store.fallback_reason == ""
    assert [i.item_id for i in from_store.items] == [i.item_id for i in explicit.items]
    stored = redis.Redis.from_url(redis_url, decode_responses=True).lrange(
        f"recops:history:{user_id(9)}", 0, -1
    )
    assert stored == history


async def test_a_click_sent_to_another_replica_counts_for_the_serving_version(
    start_server, engines_dir, redis_server
) -> None:
    redis_url, _ = redis_server
    stable = await start_server(redis_url=redis_url)
    canary = await start_server(engines={"v2": "v2"}, redis_url=redis_url)
    async with (
        RecommenderClient(grpc_target(stable)) as a,
        RecommenderClient(grpc_target(canary)) as b,
    ):
        answer = await a.recommend(user_id(8), history=[item_id(4), item_id(5)], k=5)
        clicked = answer.items[0].item_id
        for _ in range(100):  # the served list reaches Redis off the request path
            first = await b.feedback(user_id(8), clicked, "click", request_id=answer.request_id)
            if first.recommended:
                break
            await asyncio.sleep(0.01)
        again = await b.feedback(user_id(8), clicked, "click", request_id=answer.request_id)
    assert first.recommended and first.version == "v1"
    assert again.recommended
    text = await metrics_text(canary)
    assert metric(text, "recops_online_hits_total", version="v1") == 1  # once, for v1
    assert metric(text, "recops_online_hits_total", version="v2") == 0


async def test_a_redis_outage_degrades_answers_without_failing_them(
    start_server, redis_server
) -> None:
    redis_url, process = redis_server
    server = await start_server(redis_url=redis_url)
    async with RecommenderClient(grpc_target(server)) as client:
        process.terminate()
        process.wait(10)
        answer = await client.recommend(user_id(7), k=5)
        with_history = await client.recommend(user_id(7), history=[item_id(3)], k=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.feedback(user_id(7), item_id(3), "click")
    assert answer.fallback_reason == "history_unavailable" and len(answer.items) == 5
    assert with_history.fallback_reason == "" and len(with_history.items) == 5
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_redis_histories_expire_after_the_last_feedback(start_server, redis_server) -> None:
    # Before, a history lived forever: every user who ever sent feedback stayed in Redis.
    redis_url, _ = redis_server
    server = await start_server(redis_url=redis_url, history_ttl_s=120)
    async with RecommenderClient(grpc_target(server)) as client:
        await client.feedback(user_id(6), item_id(3), "click")
    ttl = redis.Redis.from_url(redis_url).ttl(f"recops:history:{user_id(6)}")
    assert 0 < ttl <= 120
