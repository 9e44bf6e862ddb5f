"""Each per-user store holds no more than its byte budget, whatever a client sends.

Before, the served lists were bounded by a count (200,000 lists, about 34 kB each at
k=1000) and the histories too (100,000 users, 64 kB each with ids of 256 characters):
gigabytes, which any client could fill. tracemalloc checks that the estimates the budgets
count do bound what Python really allocates, within a slack for the tables of the dicts
that hold the entries (a dict keeps its table through evictions).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recops_contracts import metrics as m
from recops_runtime.api.messages import FeedbackRequest
from recops_runtime.fleet.shared_state_server import SharedStateServer
from recops_runtime.registry.version_registry import VersionRegistry
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.scoring.model_version import ScoreResult
from recops_runtime.stores.history import InMemoryHistoryStore
from recops_runtime.stores.served import LocalServedLists, Served
from recops_runtime.stores.topk_cache import TopKCache, cache_key

BUDGET = 2 * 1024 * 1024
SLACK = 1.15
ITEM_NAMES = [f"item-{i:06d}" for i in range(1000)]  # one id map, shared like a version's


def long_id(kind: str, n: int) -> str:
    return f"{kind}-{n:08d}-".ljust(256, "x")


def allocated_by(fill: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``fill`` ran (what it keeps), and what it returned."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fill()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def test_served_lists_of_a_thousand_items_stay_within_their_budget() -> None:
    def fill() -> LocalServedLists:
        lists = LocalServedLists(max_bytes=BUDGET)
        for n in range(1000):  # about 34 MB without a budget
            lists.remember(long_id("request", n)[:128], Served("v1", frozenset(ITEM_NAMES)))
        return lists

    used, lists = allocated_by(fill)
    assert isinstance(lists, LocalServedLists)
    assert lists.bytes <= BUDGET and 0 < len(lists) < 100
    assert used <= SLACK * BUDGET
    assert lists.get(long_id("request", 0)[:128]) is None  # the oldest went first
    assert lists.get(long_id("request", 999)[:128]) is not None


def test_lists_received_as_json_count_their_own_ids() -> None:
    def fill() -> LocalServedLists:
        lists = LocalServedLists(max_bytes=BUDGET, ids_owned=True)
        for n in range(500):
            items = frozenset(long_id(f"item{i}", n) for i in range(50))  # fresh strings
            lists.remember(long_id("request", n)[:128], Served("v1", items))
        return lists

    used, lists = allocated_by(fill)
    assert isinstance(lists, LocalServedLists)
    assert lists.bytes <= BUDGET and len(lists) < 500
    assert used <= SLACK * BUDGET


def test_histories_of_new_users_with_long_ids_stay_within_their_budget() -> None:
    def fill() -> InMemoryHistoryStore:
        store = InMemoryHistoryStore(max_bytes=BUDGET)
        for n in range(20_000):  # 20k users of 256-character ids: about 12 MB unbounded
            store.append_now(long_id("user", n), long_id("item", n))
        for n in range(20_000, 20_050):  # and a few long histories
            for i in range(200):
                store.append_now(long_id("user", n), long_id("item", i))
        return store

    used, store = allocated_by(fill)
    assert isinstance(store, InMemoryHistoryStore)
    assert store.bytes <= BUDGET and len(store) < 20_000
    assert used <= SLACK * BUDGET
    assert store.recent_now(long_id("user", 20_049), 500) == [
        long_id("item", i) for i in range(200)
    ]


def test_a_full_history_counts_the_items_it_drops() -> None:
    store = InMemoryHistoryStore(max_items=3, max_bytes=BUDGET)
    for i in range(3):
        store.append_now("u", long_id("item", i))
    full = store.bytes
    for i in range(3, 100):
        store.append_now("u", long_id("item", i))
    assert store.bytes == full  # same-length ids in, same-length ids out


def test_cached_top_k_lists_stay_within_their_budget() -> None:
    def fill() -> TopKCache:
        cache = TopKCache(max_users=1_000_000, max_bytes=BUDGET)
        history = np.arange(1, 50, dtype=np.int64)
        for n in range(1000):
            key = cache_key("v1", 1, n, history, history, 1000)
            result = ScoreResult(np.arange(1000, dtype=np.int64), np.ones(1000, dtype=np.float32))
            cache.put(long_id("user", n), key, result)
        return cache

    used, cache = allocated_by(fill)
    assert isinstance(cache, TopKCache)
    assert cache.bytes <= BUDGET and len(cache) < 1000
    assert used <= SLACK * BUDGET


def test_the_supervisors_state_is_bounded_too(tmp_path: Path) -> None:
    state = SharedStateServer(
        tmp_path / "s.sock",
        max_users=10**6,
        max_items=200,
        history_bytes=BUDGET,
        served_bytes=BUDGET,
    )
    items = [long_id("item", i) for i in range(100)]
    for n in range(2000):
        request = long_id("request", n)[:128]
        state.apply("remember", [[[request, "v1", items]]])
        state.apply("append", [long_id("user", n), items[0]])
        for item in items[:10]:
            state.apply("hit", [request, item])
    assert state.served.bytes <= BUDGET and len(state.served) < 2000
    assert state.history.bytes <= BUDGET
    assert state.hits.bytes <= state.hits.max_bytes and len(state.hits) < 2000
    assert state.apply("hit", [long_id("request", 1999)[:128], items[0]]) is False


async def test_a_click_after_its_list_was_evicted_is_unattributed_not_an_error() -> None:
    served = LocalServedLists(max_bytes=1024 * 1024)
    plane = DataPlane(VersionRegistry(loader=lambda folder, threads: None), served=served)  # type: ignore[arg-type,return-value]
    for n in range(100):
        served.remember(f"r{n}", Served("v1", frozenset(ITEM_NAMES), user_id="u1", at=time.time()))
    assert served.get("r0") is None
    answer = await plane.feedback(FeedbackRequest("u1", ITEM_NAMES[0], "click", request_id="r0"))
    kept = await plane.feedback(FeedbackRequest("u1", ITEM_NAMES[0], "click", request_id="r99"))
    assert not answer.recommended and answer.version == ""
    assert kept.recommended and kept.version == "v1"
    text = plane.metrics.exposition().decode()
    unattributed = '{event="click",reason="unknown_request"} 1.0'
    assert f"{m.total(m.FEEDBACK_UNATTRIBUTED)}{unattributed}" in text
