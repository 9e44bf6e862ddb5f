"""What each request was served, kept to join feedback with (online hits).

A click counts as an online hit of the version that served the request when the clicked
item was in that request's list, once per (request, item). ``LocalServedLists`` keeps the
most recent lists of this process, within a budget of bytes (any client can ask for lists
of a thousand items, so a count of lists bounds nothing): the least recently served go
first, and a click that comes after its list went counts as unattributed, as a click on a
request this server never saw does. ``RedisServedLists`` also writes them to Redis (with a
TTL, in pipelined batches off the request path), so feedback that a load balancer sends
to another replica, or to a pod of another version, still finds the serving version.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from recops_runtime.serve_settings import DEFAULT_STORE_BYTES
from recops_runtime.stores.byte_lru import ByteLRU
from recops_runtime.stores.entry_sizes import hit_bytes, served_bytes

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Served:
    version: str
    items: frozenset[str]
    hits: set[str] = field(default_factory=set)
    # Whom it was served to, and when (Unix time): feedback counts only from that user,
    # within the attribution window.
    user_id: str = ""
    at: float = 0.0


class ServedLists(Protocol):
    def remember(self, request_id: str, served: Served) -> None: ...

    async def lookup(self, request_id: str) -> Served | None: ...

    async def first_hit(self, request_id: str, served: Served, item_id: str) -> bool:
        """True the first time ``item_id`` is clicked for ``request_id``."""
        ...

    async def close(self) -> None: ...


class LocalServedLists:
    """This process's most recent lists, bounded in bytes (and, secondarily, in lists)."""

    def __init__(
        self,
        capacity: int = 200_000,
        max_bytes: int = DEFAULT_STORE_BYTES,
        *,
        ids_owned: bool = False,
    ) -> None:
        self.capacity = capacity
        # False: the item ids are the version's id-map strings (a server's own lists);
        # True: each list holds its own copies (lists that arrived as JSON).
        self.ids_owned = ids_owned
        self._lists: ByteLRU[str, Served] = ByteLRU(max_bytes, capacity)

    @property
    def bytes(self) -> int:
        """The estimated bytes of the lists kept (:mod:`~recops_runtime.stores.entry_sizes`)."""
        return self._lists.bytes

    @property
    def max_bytes(self) -> int:
        return self._lists.max_bytes

    def __len__(self) -> int:
        return len(self._lists)

    def remember(self, request_id: str, served: Served) -> None:
        size = served_bytes(request_id, served.items, served.user_id, ids_owned=self.ids_owned)
        self._lists.put(request_id, served, size)

    async def lookup(self, request_id: str) -> Served | None:
        return self._lists.peek(request_id)

    def get(self, request_id: str) -> Served | None:
        """:meth:`lookup` without the await (this process's lists only)."""
        return self._lists.peek(request_id)

    async def first_hit(self, request_id: str, served: Served, item_id: str) -> bool:
        if item_id in served.hits:
            return False
        served.hits.add(item_id)
        self._lists.grow(request_id, hit_bytes(item_id))
        return True

    async def close(self) -> None:
        self._lists.clear()


class RedisServedLists(LocalServedLists):
    """Local lists first; Redis for requests another process served."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: int = 3600,
        # v2: the value names the user and the time (JSON); lists of servers before it,
        # under the old prefix, are not read (their clicks count as unattributed).
        prefix: str = "recops:served:v2:",
        timeout_s: float = 0.25,
        capacity: int = 200_000,
        max_bytes: int = DEFAULT_STORE_BYTES,
    ) -> None:
        import redis.asyncio as aioredis

        super().__init__(capacity, max_bytes)
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._redis: Any = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._pending: list[tuple[str, Served]] = []
        self._writer: asyncio.Task[None] | None = None

    def remember(self, request_id: str, served: Served) -> None:
        super().remember(request_id, served)
        self._pending.append((request_id, served))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        # Everything remembered while the previous pipeline ran goes out in the next one.
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for request_id, served in batch:
                        value = json.dumps(
                            [served.version, served.user_id, served.at, sorted(served.items)]
                        )
                        pipe.set(self.prefix + request_id, value, ex=self.ttl_s)
                    await pipe.execute()
            except Exception:
                log.warning("could not share %d served lists in Redis", len(batch), exc_info=True)

    async def lookup(self, request_id: str) -> Served | None:
        local = await super().lookup(request_id)
        if local is not None:
            return local
        value: str | None = await self._redis.get(self.prefix + request_id)
        if value is None:
            return None
        version, user_id, at, items = json.loads(value)
        return Served(version, frozenset(items), user_id=user_id, at=at)

    async def first_hit(self, request_id: str, served: Served, item_id: str) -> bool:
        key = f"{self.prefix}{request_id}:hits"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, item_id)
                pipe.expire(key, self.ttl_s)
                added, _ = await pipe.execute()
        except Exception:
            log.warning("could not record the hit in Redis; counting it here", exc_info=True)
            return await super().first_hit(request_id, served, item_id)
        return bool(added)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer
        await self._redis.aclose()
        await super().close()
