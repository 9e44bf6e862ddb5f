"""Users' recent items, fed by feedback and read when a request carries no history.

``InMemoryHistoryStore`` is the embedded default: bounded in users (least recently
touched evicted) and in items per user. ``RedisHistoryStore`` keeps the same lists in
Redis (one capped list per user, newest last), so every replica sees the same history.
"""

from __future__ import annotations

import collections
from typing import Any, Protocol


class HistoryStore(Protocol):
    async def recent(self, user_id: str, limit: int) -> list[str]:
        """Up to ``limit`` most recent item ids of a user, oldest first."""
        ...

    async def append(self, user_id: str, item_id: str) -> None: ...

    async def close(self) -> None: ...


class InMemoryHistoryStore:
    def __init__(self, max_users: int = 100_000, max_items: int = 200) -> None:
        self.max_users = max_users
        self.max_items = max_items
        self._users: collections.OrderedDict[str, collections.deque[str]] = (
            collections.OrderedDict()
        )

    async def recent(self, user_id: str, limit: int) -> list[str]:
        return self.recent_now(user_id, limit)

    async def append(self, user_id: str, item_id: str) -> None:
        self.append_now(user_id, item_id)

    def recent_now(self, user_id: str, limit: int) -> list[str]:
        """:meth:`recent` without the await (the store never waits)."""
        items = self._users.get(user_id)
        if not items:
            return []
        self._users.move_to_end(user_id)
        return list(items)[-limit:]

    def append_now(self, user_id: str, item_id: str) -> None:
        items = self._users.get(user_id)
        if items is None:
            items = self._users[user_id] = collections.deque(maxlen=self.max_items)
            if len(self._users) > self.max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
        items.append(item_id)

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
    ) -> None:
        import redis.asyncio as aioredis

        self.max_items = max_items
        self.prefix = prefix
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
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
