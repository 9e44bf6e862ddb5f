"""Users' recent items, fed by feedback and read when a request carries no history.

``InMemoryHistoryStore`` is the embedded default: bounded in bytes (ids are up to 256
characters, so a user's 200 items can hold 64 kB: a count of users bounds nothing), in
users, and in items per user; the least recently touched users go first.
``RedisHistoryStore`` keeps the same lists in Redis (one capped list per user, newest
last), so every replica sees the same history; each list expires ``ttl_s`` after its
user's last feedback, so users who never come back do not fill Redis.
"""

from __future__ import annotations

import collections
from typing import Any, Protocol

from recops_runtime.serve_settings import DEFAULT_HISTORY_TTL_S, DEFAULT_STORE_BYTES
from recops_runtime.stores.byte_lru import ByteLRU
from recops_runtime.stores.entry_sizes import history_item_bytes, history_user_bytes


class HistoryStore(Protocol):
    async def recent(self, user_id: str, limit: int) -> list[str]:
        """Up to ``limit`` most recent item ids of a user, oldest first."""
        ...

    async def append(self, user_id: str, item_id: str) -> None: ...

    async def close(self) -> None: ...


class InMemoryHistoryStore:
    def __init__(
        self, max_users: int = 100_000, max_items: int = 200, max_bytes: int = DEFAULT_STORE_BYTES
    ) -> None:
        self.max_users = max_users
        self.max_items = max_items
        self._users: ByteLRU[str, collections.deque[str]] = ByteLRU(max_bytes, max_users)

    @property
    def bytes(self) -> int:
        """The estimated bytes of the histories kept (:mod:`~recops_runtime.stores.entry_sizes`)."""
        return self._users.bytes

    @property
    def max_bytes(self) -> int:
        return self._users.max_bytes

    def __len__(self) -> int:
        return len(self._users)

    async def recent(self, user_id: str, limit: int) -> list[str]:
        return self.recent_now(user_id, limit)

    async def append(self, user_id: str, item_id: str) -> None:
        self.append_now(user_id, item_id)

    def recent_now(self, user_id: str, limit: int) -> list[str]:
        """:meth:`recent` without the await (the store never waits)."""
        items = self._users.get(user_id)
        if not items:
            return []
        return list(items)[-limit:]

    def append_now(self, user_id: str, item_id: str) -> None:
        items = self._users.get(user_id)
        if items is None:
            items = collections.deque(maxlen=self.max_items)
            self._users.put(user_id, items, history_user_bytes(user_id))
        dropped = history_item_bytes(items[0]) if len(items) == self.max_items else 0
        items.append(item_id)
        self._users.grow(user_id, history_item_bytes(item_id) - dropped)

    async def close(self) -> None:
        self._users.clear()


class RedisHistoryStore:
    """History lists in Redis under ``<prefix><user_id>``, trimmed to ``max_items``."""

    def __init__(
        self,
        url: str,
        *,
        max_items: int = 200,
        prefix: str = "recops:history:",
        timeout_s: float = 0.25,
        ttl_s: int = DEFAULT_HISTORY_TTL_S,
    ) -> None:
        import redis.asyncio as aioredis

        self.max_items = max_items
        self.prefix = prefix
        self.ttl_s = ttl_s
        # Short timeouts: a stalled Redis must degrade answers, not hold them to their deadline.
        self._redis: Any = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def ping(self) -> None:
        await self._redis.ping()

    async def recent(self, user_id: str, limit: int) -> list[str]:
        items: list[str] = await self._redis.lrange(self.prefix + user_id, -limit, -1)
        return items

    async def append(self, user_id: str, item_id: str) -> None:
        key = self.prefix + user_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, item_id)
            pipe.ltrim(key, -self.max_items, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
