"""A worker's history store and served lists kept by its supervisor, reached over a Unix socket.

A server of several processes (``recops serve --processes N``) shares one gRPC port: the
kernel hands each new connection to one of them, so a user's Feedback can reach another
process than the Recommend it answers, and that user's next Recommend a third. With
``--redis-url`` every process uses Redis, as replicas do. Without it the supervisor owns
the state (:mod:`recops_runtime.fleet.shared_state_server`), in the same in-memory
structures one process uses, and these stores reach it. Chosen over shared memory (a hash
table of variable-length lists in a shared segment needs its own allocator and
cross-process locks) and over per-user affinity (``SO_REUSEPORT`` picks a process per
connection, not per user, and one client connection carries many users).

What it costs: a Recommend that carries its history costs one served list, batched with
the others of the same event-loop turn into one message; only Recommends without
history (a round trip to read it) and Feedback (to append, and to join a click to its
request) wait on the supervisor. Each worker still keeps its own served lists, so a click
that comes back to the process that served it joins without a round trip. Like Redis, a
supervisor that does not answer in time degrades answers (popularity fallback, an
unjoined click), never fails them.

Wire format: one JSON array a line, ``[call_id, op, *args]``; the supervisor answers
``[call_id, result]`` unless ``call_id`` is 0 (fire and forget).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any

from recops_runtime.serve_settings import DEFAULT_STORE_BYTES
from recops_runtime.stores.served import LocalServedLists, Served

log = logging.getLogger(__name__)

# A line is one history (at most a few hundred ids) or one turn's served lists.
LINE_LIMIT = 16 * 1024 * 1024


class SharedStateClient:
    """A worker's connection to the supervisor's state (one per worker process)."""

    def __init__(self, path: Path, *, timeout_s: float = 1.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(
            str(self.path), limit=LINE_LIMIT
        )
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                call_id, result = json.loads(line)
                future = self._waiting.pop(call_id, None)
                if future is not None and not future.done():
                    future.set_result(result)
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the supervisor's state is gone"))
            self._waiting.clear()

    def send(self, op: str, *args: Any) -> None:
        """Fire and forget (ordered before any later call of this process)."""
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("not connected to the supervisor's state")
        self._writer.write(json.dumps([0, op, *args]).encode() + b"\n")

    async def call(self, op: str, *args: Any) -> Any:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("not connected to the supervisor's state")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        self._writer.write(json.dumps([call_id, op, *args]).encode() + b"\n")
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        finally:
            self._waiting.pop(call_id, None)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class SharedHistoryStore:
    """``HistoryStore`` over the supervisor's state; the served lists close the client."""

    def __init__(self, client: SharedStateClient) -> None:
        self.client = client

    async def recent(self, user_id: str, limit: int) -> list[str]:
        items: list[str] = await self.client.call("recent", user_id, limit)
        return items

    async def append(self, user_id: str, item_id: str) -> None:
        # Awaited: once Feedback is answered, every process's next Recommend sees the item.
        await self.client.call("append", user_id, item_id)

    async def close(self) -> None:
        pass


class SharedServedLists(LocalServedLists):
    """Local lists first; the supervisor's for requests another process served."""

    def __init__(
        self,
        client: SharedStateClient,
        capacity: int = 200_000,
        max_bytes: int = DEFAULT_STORE_BYTES,
    ) -> None:
        super().__init__(capacity, max_bytes)
        self.client = client
        self._pending: list[tuple[str, str, list[str], str, float]] = []

    def remember(self, request_id: str, served: Served) -> None:
        super().remember(request_id, served)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(
            (request_id, served.version, list(served.items), served.user_id, served.at)
        )

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                self.client.send("remember", batch)
            except ConnectionError:
                log.warning("could not share %d served lists with the other processes", len(batch))

    async def lookup(self, request_id: str) -> Served | None:
        local = await super().lookup(request_id)
        if local is not None:
            return local
        found = await self.client.call("lookup", request_id)
        if found is None:
            return None
        version, items, user_id, at = found
        return Served(version, frozenset(items), user_id=user_id, at=at)

    async def first_hit(self, request_id: str, served: Served, item_id: str) -> bool:
        try:
            first: bool = await self.client.call("hit", request_id, item_id)
        except (ConnectionError, TimeoutError):
            log.warning("the supervisor's state did not answer; counting the hit here")
            return await super().first_hit(request_id, served, item_id)
        return first

    async def close(self) -> None:
        self._flush()
        await self.client.close()
        await super().close()
