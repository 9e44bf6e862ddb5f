"""The supervisor's HTTP face: health and the JSON adapter passed on to the worker
processes (the public port), the fanned-out admin API (its own listener, as a single
server's: :mod:`recops_runtime.wire.admin_http`), and the merged metrics (see
:mod:`recops_runtime.fleet.supervisor`)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
from aiohttp import web

from recops_runtime.fleet.fanout import AdminFanOut, Reply, Worker, error_reply
from recops_runtime.fleet.metrics_merge import merge_expositions
from recops_runtime.wire.admin_auth import AdminToken
from recops_runtime.wire.admin_http import TRAFFIC, VERSIONS, admin_json_app
from recops_runtime.wire.http_json import DEFAULT_READ_TIMEOUT_S, json_app, read_body, read_json

# Application routes a worker answers itself; the supervisor passes them on in turn.
PASSED_ON = ("/v1/recommend", "/v1/feedback", "/v1/model-info")
PASSED_HEADERS = ("X-Request-Timeout-Ms", "Content-Type")
PROCESSES = "/admin/v1/processes"


class WorkerClients:
    """HTTP to the workers' private loopback ports: ``{index: (pid, http, metrics)}``."""

    def __init__(self, workers: dict[int, tuple[int, int, int]]) -> None:
        self.workers = workers
        self._session: aiohttp.ClientSession | None = None
        self._turn = itertools.cycle(sorted(workers))

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; no total timeout: loading an
        # engine in every process takes as long as it takes.
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    def next_worker(self) -> int:
        return next(self._turn)

    def url(self, index: int, path: str) -> str:
        return f"http://127.0.0.1:{self.workers[index][1]}{path}"

    async def send(self, index: int, method: str, path: str, body: Any) -> Reply:
        try:
            async with self.session.request(method, self.url(index, path), json=body) as r:
                text = await r.text()
                try:
                    payload = json.loads(text) if text else None
                except ValueError:
                    payload = text
                return Reply(r.status, payload)
        except (aiohttp.ClientError, OSError) as exc:
            return error_reply(503, "UNAVAILABLE", f"not reachable: {exc}")

    async def metrics(self) -> list[str]:
        async def one(index: int) -> str:
            url = f"http://127.0.0.1:{self.workers[index][2]}/metrics"
            async with self.session.get(url) as r:
                return await r.text()

        return list(await asyncio.gather(*(one(i) for i in sorted(self.workers))))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _versions(reply: Reply) -> dict[str, Any]:
    return reply.body if reply.ok and isinstance(reply.body, dict) else {"error": reply.body}


def _json(reply: Reply) -> web.Response:
    return web.json_response(reply.body, status=reply.status)


def build_admin_app(
    clients: WorkerClients,
    *,
    token: AdminToken | None = None,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
) -> web.Application:
    """The admin API, every change applied to every process. Errors, the supervisor's own
    (401, 404, 405, 413, a stalled or non-JSON body) included, answer in the JSON envelope
    a single process uses."""
    fanout = AdminFanOut(
        [Worker(i, pid) for i, (pid, _, _) in sorted(clients.workers.items())], clients.send
    )
    app = admin_json_app(token, read_timeout_s)

    async def get_traffic(request: web.Request) -> web.Response:
        return _json(await fanout.read(TRAFFIC))

    async def put_traffic(request: web.Request) -> web.Response:
        return _json(await fanout.set_traffic(await read_json(request)))

    async def list_versions(request: web.Request) -> web.Response:
        return _json(await fanout.read(VERSIONS))

    async def add_version(request: web.Request) -> web.Response:
        return _json(await fanout.load_version(await read_json(request)))

    async def delete_version(request: web.Request) -> web.Response:
        return _json(await fanout.unload_version(request.match_info["version"]))

    async def processes(request: web.Request) -> web.Response:
        """Each process's versions: what an operator checks after a change."""
        replies = await asyncio.gather(
            *(clients.send(i, "GET", VERSIONS, None) for i in sorted(clients.workers))
        )
        listed = [
            {"process": i, "pid": clients.workers[i][0], "status": r.status, **_versions(r)}
            for i, r in zip(sorted(clients.workers), replies, strict=True)
        ]
        return web.json_response({"processes": listed})

    app.add_routes(
        [
            web.get(TRAFFIC, get_traffic),
            web.put(TRAFFIC, put_traffic),
            web.get(VERSIONS, list_versions),
            web.post(VERSIONS, add_version),
            web.delete(VERSIONS + "/{version}", delete_version),
            web.get(PROCESSES, processes),
        ]
    )
    return app


def build_public_app(
    clients: WorkerClients, stopping: list[bool], read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> web.Application:
    """Health and the JSON routes, passed on to the processes in turn: what a Service
    exposes; never the admin API."""
    app = json_app(read_timeout_s)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "processes": len(clients.workers)})

    async def readyz(request: web.Request) -> web.Response:
        replies = await asyncio.gather(
            *(clients.send(i, "GET", "/readyz", None) for i in sorted(clients.workers))
        )
        ready = not stopping[0] and all(r.ok for r in replies)
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def pass_on(request: web.Request) -> web.StreamResponse:
        index = clients.next_worker()
        headers = {k: request.headers[k] for k in PASSED_HEADERS if k in request.headers}
        try:
            async with clients.session.request(
                request.method,
                clients.url(index, request.path),
                data=await read_body(request),
                headers=headers,
            ) as r:
                return web.Response(
                    body=await r.read(), status=r.status, content_type=r.content_type
                )
        except (aiohttp.ClientError, OSError) as exc:
            return _json(error_reply(503, "UNAVAILABLE", f"process {index}: {exc}"))

    app.add_routes(
        [
            web.post(PASSED_ON[0], pass_on),
            web.post(PASSED_ON[1], pass_on),
            web.get(PASSED_ON[2], pass_on),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
        ]
    )
    return app


def build_merged_metrics_app(clients: WorkerClients) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        try:
            texts = await clients.metrics()
        except (aiohttp.ClientError, OSError) as exc:
            # A partial sum would look like counters going backwards: answer none.
            return web.Response(status=503, text=f"a process did not answer: {exc}\n")
        return web.Response(
            body=merge_expositions(texts),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app
