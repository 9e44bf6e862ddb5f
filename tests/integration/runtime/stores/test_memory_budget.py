"""A burst of large answers and new users' feedback keeps a server within its store budgets.

Any client can ask for k=1000 and invent user and item ids of 256 characters; before the
budgets, every served list and every new user's history was kept up to a count (200,000
lists, 100,000 users), gigabytes against a pod of 1 GiB. The server here gets 8 MiB for
its served lists, 4 MiB for its histories, and a burst that would hold several times that
without eviction (about 80 MB).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recops_contracts import metrics as m
from recops_runtime.server import RecommendationServer
from recops_runtime.stores.history import InMemoryHistoryStore
from recops_runtime.stores.served import LocalServedLists
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id
from recops_testkit.serve_helpers import grpc_target, metric, metrics_text

SERVED_BUDGET = 8 * 1024 * 1024
HISTORY_BUDGET = 4 * 1024 * 1024
# What the process may grow by beyond its stores' budgets: the allocator's free lists and
# arenas (pymalloc keeps freed blocks of evicted entries for reuse rather than return them),
# gRPC's buffers and the client's own objects, all in this one test process.
OVERHEAD = 24 * 1024 * 1024
RECOMMENDS = 6000  # about 9 kB each unbounded (197 items: the test engine's all): ~55 MB
FEEDBACKS = 12000  # a new 256-character user and item each, about 2 kB unbounded: ~24 MB
CONCURRENCY = 16
TIME_LIMIT_S = 120.0
# A known history: the model ranks every item (the popularity fallback lists fewer).
HISTORY = [item_id(i) for i in (1, 2, 3)]


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def long_id(kind: str, n: int, length: int) -> str:
    return f"{kind}-{n:08d}-".ljust(length, "x")


async def burst(client: RecommenderClient, start: int, count: int, deadline: float) -> int:
    """``count`` Recommends at k=1000, then as many feedback events as that x2, each from
    a new user; returns how many were sent before the deadline."""
    sent = 0
    queue = iter(range(start, start + count))

    async def one_worker() -> None:
        nonlocal sent
        for n in queue:
            if time.monotonic() > deadline:
                return
            request_id = long_id("request", n, 128)
            await client.recommend(
                long_id("user", n, 256), history=HISTORY, k=1000, request_id=request_id
            )
            for extra in range(FEEDBACKS // RECOMMENDS):
                user = long_id("user", n * 10 + extra, 256)
                await client.feedback(user, long_id("item", n, 256), "click", request_id=request_id)
            sent += 1

    await asyncio.gather(*(one_worker() for _ in range(CONCURRENCY)))
    return sent


async def test_a_burst_beyond_the_budgets_stays_within_them(
    start_server: Callable[..., Any],
) -> None:
    server: RecommendationServer = await start_server(
        served_max_bytes=SERVED_BUDGET, history_max_bytes=HISTORY_BUDGET
    )
    served, history = server.plane.served, server.plane.history
    assert isinstance(served, LocalServedLists) and isinstance(history, InMemoryHistoryStore)
    deadline = time.monotonic() + TIME_LIMIT_S
    async with RecommenderClient(grpc_target(server)) as client:
        # Warm up the path (gRPC buffers, caches, the first arenas) before the baseline.
        await burst(client, 0, 200, deadline)
        gc.collect()
        before = rss_bytes()
        started = time.monotonic()
        sent = await burst(client, 1000, RECOMMENDS, deadline)
        print(f"burst: {time.monotonic() - started:.1f} s")
        gc.collect()
        grown = rss_bytes() - before
        # The first request's list was evicted long ago: its click is unattributed, not an error.
        late = await client.feedback(
            long_id("user", 1000, 256),
            "any-item",
            "click",
            request_id=long_id("request", 1000, 128),
        )
        answer = await client.recommend(long_id("user", 1, 256), history=HISTORY, k=1000)
    print(f"RSS grew {grown / 2**20:.1f} MiB; kept {len(served)} lists, {len(history)} users")
    assert sent == RECOMMENDS, f"only {sent} of {RECOMMENDS} sent within {TIME_LIMIT_S} s"
    # Several times what the budgets hold went through ...
    assert len(served) < RECOMMENDS / 3
    assert len(history) < FEEDBACKS / 3
    # ... and the stores kept within them, as the process did.
    assert served.bytes <= SERVED_BUDGET and history.bytes <= HISTORY_BUDGET
    assert grown < SERVED_BUDGET + HISTORY_BUDGET + OVERHEAD, f"RSS grew {grown / 2**20:.1f} MiB"
    assert not late.recommended and late.version == ""
    assert len(answer.items) > 0
    text = await metrics_text(server)
    assert metric(text, m.total(m.FEEDBACK_UNATTRIBUTED), event="click") >= 1
    assert metric(text, m.STORE_BYTES, store="served") == served.bytes
    assert metric(text, m.STORE_BUDGET, store="history") == HISTORY_BUDGET
