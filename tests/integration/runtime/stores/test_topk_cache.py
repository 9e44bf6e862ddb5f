"""The optional per-user top-k cache: an unchanged history costs no engine call, and a
changed history, request shape or engine never gets a stale list."""

from __future__ import annotations

import httpx

from recops_contracts import metrics as m
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.serve_helpers import admin_url, grpc_target, metric, metrics_text

HISTORY = [item_id(i) for i in (5, 6, 7)]


async def _lookups(server: object) -> tuple[float, float]:
    text = await metrics_text(server)  # type: ignore[arg-type]
    name = m.total(m.TOPK_CACHE)
    return metric(text, name, result="hit"), metric(text, name, result="miss")


async def test_a_repeated_request_is_answered_from_the_cache(start_server, engines_dir) -> None:
    server = await start_server(topk_cache_users=100)
    async with RecommenderClient(grpc_target(server)) as client:
        first = await client.recommend(user_id(1), history=HISTORY, exclude_seen=True)
        again = await client.recommend(user_id(1), history=HISTORY, exclude_seen=True)
        assert again.items == first.items
        assert await _lookups(server) == (1, 1)
        # Another history, another k, another user: each scored afresh.
        await client.recommend(user_id(1), history=[*HISTORY, item_id(8)], exclude_seen=True)
        await client.recommend(user_id(1), history=[*HISTORY, item_id(8)], k=3)
        await client.recommend(user_id(2), history=HISTORY, exclude_seen=True)
        assert await _lookups(server) == (1, 4)
        # A hot swap starts afresh: no list of the old engine is served.
        async with httpx.AsyncClient(timeout=60) as http:
            swap = {"version": "v1", "engineDir": str(engines_dir / "v2")}
            assert (await http.post(admin_url(server, "/admin/v1/versions"), json=swap)).is_success
        swapped = await client.recommend(user_id(2), history=HISTORY, exclude_seen=True)
        assert swapped.model_version == "2"
        assert await _lookups(server) == (1, 5)


async def test_the_cache_is_off_by_default(start_server) -> None:
    server = await start_server()
    async with RecommenderClient(grpc_target(server)) as client:
        for _ in range(2):
            await client.recommend(user_id(1), history=HISTORY)
    assert await _lookups(server) == (0, 0)
