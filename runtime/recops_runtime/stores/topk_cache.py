"""An optional per-user cache of the last top-k list (``recops serve --topk-cache-users``).

A user whose history did not change since the last request (a page reload, a second
widget, a client's retry) gets the same answer, so it need not cost an engine call. Each
user keeps one entry: the answer and its key, the version's load generation (a hot swap
or reload starts a new one) and a digest of everything the engine and the top-k step
read (the user, the known history, the excluded items, k). A request whose key differs
replaces the entry; the least recently seen users are evicted beyond ``max_users`` or
beyond ``max_bytes`` (a list of k=1000 is about 12 kB, so a count of users alone would
not bound the memory).

Off by default: an engine's scores for one history can differ in the last bits with the
batch the history was scored in (kernels pick other blockings for other batch sizes), so
a cached list can order two near-tied items differently from a fresh one. It never
serves another version's, another history's or another request shape's list.
"""

from __future__ import annotations

import hashlib

import numpy as np

from recops_runtime.scoring.model_version import ScoreResult
from recops_runtime.serve_settings import DEFAULT_STORE_BYTES
from recops_runtime.stores.byte_lru import ByteLRU
from recops_runtime.stores.entry_sizes import topk_bytes

CacheKey = tuple[str, int, int, bytes]


def cache_key(
    version: str, generation: int, user: int, history: np.ndarray, exclude: np.ndarray, k: int
) -> CacheKey:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.int64(user).tobytes())
    digest.update(np.int64(history.size).tobytes())
    digest.update(np.ascontiguousarray(history, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(exclude, dtype=np.int64).tobytes())
    return (version, generation, k, digest.digest())


class TopKCache:
    def __init__(self, max_users: int, max_bytes: int = DEFAULT_STORE_BYTES) -> None:
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self.max_users = max_users
        self._entries: ByteLRU[str, tuple[CacheKey, ScoreResult]] = ByteLRU(max_bytes, max_users)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The estimated bytes of the lists kept (:mod:`~recops_runtime.stores.entry_sizes`)."""
        return self._entries.bytes

    @property
    def max_bytes(self) -> int:
        return self._entries.max_bytes

    def get(self, user_id: str, key: CacheKey) -> ScoreResult | None:
        entry = self._entries.peek(user_id)
        if entry is None or entry[0] != key:
            return None
        self._entries.get(user_id)  # now the most recently seen
        return entry[1]

    def put(self, user_id: str, key: CacheKey, result: ScoreResult) -> None:
        size = topk_bytes(user_id, result.items, result.scores)
        self._entries.put(user_id, (key, result), size)
