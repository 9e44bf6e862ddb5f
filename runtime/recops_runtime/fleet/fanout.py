"""The admin API of a server of several processes: one call, every process, all or nothing.

Rollouts call ``PUT /admin/v1/traffic`` and ``POST /admin/v1/versions`` on the pod's HTTP
port, which the supervisor holds; it applies each change to every worker process through
the workers' private loopback ports, one admin change at a time:

- traffic: applied to the first process (which validates it: a bad split changes
  nothing anywhere and is answered as a single process answers it), then to the others;
  if one of them fails, every process gets the previous split back.
- loading or hot-swapping a version: two phases. Every process loads, checks and warms
  up the engine without serving it (the slow step, and the one that fails); only when all
  have, each switches to it, a swap of one reference that cannot fail. If one process
  refuses the engine, the others discard theirs and keep serving the old one.
- unloading: the first process checks and unloads, then the others; if one of them
  fails, those that unloaded load the version again.

A failure names the process (its index and pid) and says what was undone. This module
holds the decisions; the transport to the workers is injected, so tests drive it with
fakes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from recops_runtime.wire.admin_http import INTERNAL_PREFIX, TRAFFIC, VERSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict):
            return str(error.get("message", ""))
        return str(self.body)


@dataclass(frozen=True)
class Worker:
    index: int
    pid: int

    def __str__(self) -> str:
        return f"process {self.index} (pid {self.pid})"


# (worker index, HTTP method, path, JSON body or None) -> the worker's reply. A transport
# failure is a reply too (status 503), so one dead process cannot hide the others' state.
Send = Callable[[int, str, str, Any], Awaitable[Reply]]


def error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class AdminFanOut:
    def __init__(self, workers: Sequence[Worker], send: Send) -> None:
        if not workers:
            raise ValueError("a fan-out needs at least one worker")
        self.workers = list(workers)
        self._send = send
        self._lock = asyncio.Lock()  # one admin change at a time, in every process

    async def read(self, path: str) -> Reply:
        """Reads are answered by the first process (every process holds the same state)."""
        return await self._send(self.workers[0].index, "GET", path, None)

    async def _all(
        self, method: str, path: str, body: Any, workers: Sequence[Worker]
    ) -> list[Reply]:
        return list(
            await asyncio.gather(*(self._send(w.index, method, path, body) for w in workers))
        )

    def _failed(self, worker: Worker, reply: Reply, undone: str) -> Reply:
        log.error("admin change failed in %s: %s (%s)", worker, reply.message, undone)
        status = reply.status if 400 <= reply.status < 500 else 502
        return error_reply(status, _code(reply), f"{worker}: {reply.message}; {undone}")

    async def set_traffic(self, body: Any) -> Reply:
        async with self._lock:
            first, *rest = self.workers
            previous = await self.read(TRAFFIC)
            if not previous.ok:
                return self._failed(first, previous, "nothing was changed")
            reply = await self._send(first.index, "PUT", TRAFFIC, body)
            if not reply.ok:
                return reply  # refused as one process refuses it: nothing changed anywhere
            replies = await self._all("PUT", TRAFFIC, body, rest)
            failed = [(w, r) for w, r in zip(rest, replies, strict=True) if not r.ok]
            if not failed:
                return reply
            changed = [first, *(w for w, r in zip(rest, replies, strict=True) if r.ok)]
            await self._all("PUT", TRAFFIC, previous.body, changed)
            return self._failed(*failed[0], "every process is back on the previous split")

    async def load_version(self, body: Any) -> Reply:
        async with self._lock:
            name = body.get("version") if isinstance(body, dict) else None
            staged = await self._all("POST", f"{INTERNAL_PREFIX}/staged", body, self.workers)
            failed = [(w, r) for w, r in zip(self.workers, staged, strict=True) if not r.ok]
            if failed:
                ready = [w for w, r in zip(self.workers, staged, strict=True) if r.ok]
                if ready and isinstance(name, str):
                    await self._all("DELETE", _staged(name), None, ready)
                if len(failed) == len(self.workers):
                    _, reply = failed[0]  # refused everywhere: the artifact's fault
                    return error_reply(
                        reply.status if 400 <= reply.status < 500 else 502,
                        _code(reply),
                        f"{reply.message} (in every process; the loaded versions keep serving)",
                    )
                return self._failed(
                    *failed[0], "the other processes discarded it and keep serving as before"
                )
            assert isinstance(name, str)  # every process accepted the body
            committed = await self._all("POST", f"{_staged(name)}/commit", None, self.workers)
            for worker, reply in zip(self.workers, committed, strict=True):
                if not reply.ok:  # only a process that went away fails a commit
                    return self._failed(worker, reply, "the other processes serve the new engine")
            return committed[0]

    async def unload_version(self, name: str) -> Reply:
        async with self._lock:
            first, *rest = self.workers
            listed = await self.read(VERSIONS)
            path = f"{VERSIONS}/{quote(name, safe='')}"
            reply = await self._send(first.index, "DELETE", path, None)
            if not reply.ok:
                return reply  # still has traffic, or unknown: nothing changed anywhere
            replies = await self._all("DELETE", path, None, rest)
            failed = [(w, r) for w, r in zip(rest, replies, strict=True) if not r.ok]
            if not failed:
                return reply
            engine_dir = _engine_dir(listed, name)
            unloaded = [first, *(w for w, r in zip(rest, replies, strict=True) if r.ok)]
            if engine_dir is None:
                return self._failed(*failed[0], "the others had already unloaded it")
            body = {"version": name, "engineDir": engine_dir}
            await self._all("POST", f"{INTERNAL_PREFIX}/staged", body, unloaded)
            await self._all("POST", f"{_staged(name)}/commit", None, unloaded)
            return self._failed(*failed[0], "the others loaded it again")


def _staged(name: str) -> str:
    return f"{INTERNAL_PREFIX}/staged/{quote(name, safe='')}"


def _code(reply: Reply) -> str:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
        return str(reply.body["error"].get("code", "UNAVAILABLE"))
    return "UNAVAILABLE"


def _engine_dir(listed: Reply, name: str) -> str | None:
    if not listed.ok or not isinstance(listed.body, dict):
        return None
    for version in listed.body.get("versions", []):
        if isinstance(version, dict) and version.get("version") == name:
            engine_dir = version.get("engine_dir")
            return str(engine_dir) if engine_dir else None
    return None
