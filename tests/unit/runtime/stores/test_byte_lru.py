"""The byte-bounded mapping behind every per-user store: least recently used out first."""

from __future__ import annotations

from recops_runtime.stores.byte_lru import ByteLRU


def test_entries_are_evicted_by_bytes_oldest_first() -> None:
    lru: ByteLRU[str, int] = ByteLRU(max_bytes=100)
    for key in "abcd":
        lru.put(key, 0, 30)
    assert [k for k in "abcd" if k in lru] == ["b", "c", "d"]
    assert lru.bytes == 90 and lru.evictions == 1


def test_reading_an_entry_keeps_it_and_peeking_does_not() -> None:
    lru: ByteLRU[str, int] = ByteLRU(max_bytes=60)
    lru.put("a", 1, 30)
    lru.put("b", 2, 30)
    assert lru.get("a") == 1  # "b" is now the least recently used
    lru.put("c", 3, 30)
    assert "b" not in lru and "a" in lru
    assert lru.peek("a") == 1  # does not protect "a"
    lru.put("d", 4, 30)
    assert "a" not in lru and lru.get("d") == 4


def test_an_entry_grows_in_place_and_the_count_cap_still_holds() -> None:
    lru: ByteLRU[str, int] = ByteLRU(max_bytes=100, max_entries=2)
    lru.put("a", 1, 10)
    lru.put("b", 2, 10)
    lru.put("c", 3, 10)
    assert len(lru) == 2 and "a" not in lru  # the count cap
    lru.grow("c", 85)  # "b" must go to make room
    assert "b" not in lru and lru.bytes == 95
    lru.grow("missing", 1000)  # an evicted entry's growth is ignored
    assert lru.bytes == 95
    lru.put("c", 3, 5)  # a replacement counts its new size only
    assert lru.bytes == 5
    assert lru.pop("c") == 3 and lru.bytes == 0 and len(lru) == 0


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    lru: ByteLRU[str, int] = ByteLRU(max_bytes=50)
    lru.put("small", 1, 10)
    lru.put("huge", 2, 51)
    assert "huge" not in lru and lru.get("small") == 1 and lru.bytes == 10
