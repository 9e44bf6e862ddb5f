"""A mapping bounded by the estimated bytes of its entries, least recently used first out.

Every per-user store of the server (served lists, histories, the top-k cache) keeps its
entries in one of these, so what a client can make the server hold is a number of bytes
the operator chose, whatever the ids' lengths or the lists' sizes. A count cap can be
kept beside the bytes (the stores' former bounds). An entry bigger than the whole budget
is not kept, and evicts nothing.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.evictions = 0
        self._entries: collections.OrderedDict[K, V] = collections.OrderedDict()
        self._sizes: dict[K, int] = {}
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """The estimated bytes of every entry held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The entry, now the most recently used; None when absent."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The entry without touching its place in the order."""
        return self._entries.get(key)

    def put(self, key: K, value: V, size: int) -> None:
        """Adds or replaces an entry of ``size`` estimated bytes, then evicts down to the
        bounds (oldest first). An entry bigger than the whole budget replaces nothing else."""
        if size > self.max_bytes:
            self.pop(key)
            self.evictions += 1
            return
        self._bytes += size - self._sizes.get(key, 0)
        self._entries[key] = value
        self._entries.move_to_end(key)
        self._sizes[key] = size
        self._evict()

    def grow(self, key: K, delta: int) -> None:
        """An entry changed in place (an item appended or dropped) by ``delta`` bytes."""
        if key not in self._sizes:
            return
        self._sizes[key] += delta
        self._bytes += delta
        if delta > 0:
            self._evict()

    def pop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        self._bytes -= self._sizes.pop(key, 0)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self._bytes = 0

    def _evict(self) -> None:
        entries = self._entries
        while entries and (
            self._bytes > self.max_bytes
            or (self.max_entries is not None and len(entries) > self.max_entries)
        ):
            key, _ = entries.popitem(last=False)
            self._bytes -= self._sizes.pop(key)
            self.evictions += 1
