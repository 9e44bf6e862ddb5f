"""The supervisor's side of the state its worker processes share without Redis.

Users' histories and served lists live here, in the same in-memory structures one process
uses (``InMemoryHistoryStore``, ``LocalServedLists``), within the same byte budgets; the
clicks already counted per request are bounded by an eighth of the served lists' budget
(a request id and a few item ids each). Each worker reaches them through
:mod:`recops_runtime.stores.shared_state`, which also describes the wire format and why
the state is shared this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from recops_runtime.serve_settings import DEFAULT_STORE_BYTES, MIN_STORE_BYTES
from recops_runtime.stores.byte_lru import ByteLRU
from recops_runtime.stores.entry_sizes import hit_bytes, str_bytes
from recops_runtime.stores.history import InMemoryHistoryStore
from recops_runtime.stores.served import LocalServedLists, Served
from recops_runtime.stores.shared_state import LINE_LIMIT

# The set of one request's counted clicks, with its OrderedDict slot (see entry_sizes).
HITS_FIXED = 112 + 216

log = logging.getLogger(__name__)


class SharedStateServer:
    """The supervisor's side: answers every worker's calls, in order per connection."""

    def __init__(
        self,
        path: Path,
        *,
        max_users: int,
        max_items: int,
        capacity: int = 200_000,
        history_bytes: int = DEFAULT_STORE_BYTES,
        served_bytes: int = DEFAULT_STORE_BYTES,
    ) -> None:
        self.path = path
        self.history = InMemoryHistoryStore(max_users, max_items, history_bytes)
        self.served = LocalServedLists(capacity, served_bytes, ids_owned=True)
        self.hits: ByteLRU[str, set[str]] = ByteLRU(
            max(MIN_STORE_BYTES, served_bytes // 8), capacity
        )
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=LINE_LIMIT
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while line := await reader.readline():
                call_id, op, *args = json.loads(line)
                result = self.apply(op, args)
                if call_id:
                    writer.write(json.dumps([call_id, result]).encode() + b"\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the worker went away; its calls went with it
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    def apply(self, op: str, args: list[Any]) -> Any:
        """One call; synchronous, so calls of all workers apply one at a time."""
        if op == "recent":
            user, limit = args
            return self.history.recent_now(user, int(limit))
        if op == "append":
            user, item = args
            self.history.append_now(user, item)
            return None
        if op == "remember":
            for request_id, version, items, *seen in args[0]:
                # (user, time) it was served to; a list without them never attributes.
                user_id, at = seen or ("", 0.0)
                entry = Served(version, frozenset(items), user_id=user_id, at=at)
                self.served.remember(request_id, entry)
            return None
        if op == "lookup":
            served = self.served.get(args[0])
            if served is None:
                return None
            return [served.version, sorted(served.items), served.user_id, served.at]
        if op == "hit":
            request_id, item = args
            hits = self.hits.peek(request_id)
            if hits is None:
                hits = set()
                self.hits.put(request_id, hits, HITS_FIXED + str_bytes(request_id))
            first = item not in hits
            if first:
                hits.add(item)
                self.hits.grow(request_id, hit_bytes(item))
            return first
        raise ValueError(f"unknown shared-state call {op!r}")
