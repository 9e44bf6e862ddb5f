"""The embedded history store keeps recent items per user within its bounds."""

from __future__ import annotations

from recops_runtime.stores.history import InMemoryHistoryStore


async def test_recent_items_oldest_first_capped_per_user() -> None:
    store = InMemoryHistoryStore(max_users=10, max_items=3)
    for item in ("a", "b", "c", "d"):
        await store.append("u1", item)
    assert await store.recent("u1", 10) == ["b", "c", "d"]
    assert await store.recent("u1", 2) == ["c", "d"]
    assert await store.recent("nobody", 5) == []


async def test_least_recently_used_users_are_evicted() -> None:
    store = InMemoryHistoryStore(max_users=2, max_items=5)
    await store.append("u1", "a")
    await store.append("u2", "b")
    assert await store.recent("u1", 5) == ["a"]  # touching u1 makes u2 the oldest
    await store.append("u3", "c")
    assert await store.recent("u2", 5) == []
    assert await store.recent("u1", 5) == ["a"]
