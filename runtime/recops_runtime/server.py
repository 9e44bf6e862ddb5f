"""`recops serve`: the gRPC service, the JSON/HTTP adapter and the metrics endpoint.

Start-up opens the HTTP and metrics ports first (``/healthz`` live, ``/readyz`` false),
loads and warms every version, then opens the gRPC port and turns ready. Shutdown (SIGTERM,
SIGINT or :meth:`RecommendationServer.stop`) first reports not-ready, then stops
accepting RPCs and waits for the accepted ones to be answered, then drains the engines'
queues and flushes the feedback log, so no accepted request is lost.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from aiohttp import web

from recops_runtime.dataplane import DataPlane
from recops_runtime.eventloop import freeze_heap
from recops_runtime.feedback_log import FeedbackLog
from recops_runtime.grpc_service import HealthReporter, build_grpc_server
from recops_runtime.history import HistoryStore, InMemoryHistoryStore, RedisHistoryStore
from recops_runtime.http_service import STOPPING_KEY, build_http_app, build_metrics_app
from recops_runtime.metrics import RuntimeMetrics
from recops_runtime.served import LocalServedLists, RedisServedLists, ServedLists
from recops_runtime.settings import ServeSettings
from recops_runtime.versions import EngineLoader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoundPorts:
    grpc: int
    http: int
    metrics: int


class RecommendationServer:
    def __init__(self, settings: ServeSettings, loader: EngineLoader | None = None) -> None:
        self.settings = settings
        history: HistoryStore
        served: ServedLists
        if settings.redis_url:
            history = RedisHistoryStore(settings.redis_url, max_items=settings.history_max_items)
            served = RedisServedLists(settings.redis_url)
        else:
            history = InMemoryHistoryStore(settings.history_max_users, settings.history_max_items)
            served = LocalServedLists()
        self.plane = DataPlane(
            batching=settings.batching,
            metrics=RuntimeMetrics(),
            history=history,
            feedback_log=FeedbackLog(settings.feedback_log) if settings.feedback_log else None,
            loader=loader,
            history_limit=settings.history_max_items,
            served=served,
            drift=settings.drift,
        )
        self.health = HealthReporter(self.plane)
        self._grpc: grpc.aio.Server | None = None
        self._runners: list[web.AppRunner] = []
        self._http_app: web.Application | None = None
        self.ports: BoundPorts | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> BoundPorts:
        s = self.settings
        if isinstance(self.plane.history, RedisHistoryStore):
            await self.plane.history.ping()  # fail fast on a wrong --redis-url
        await self.health.refresh()
        # Liveness, readiness (false until warmed up) and metrics answer during warm-up, so
        # a slow engine load is not mistaken for a dead process.
        self._http_app = build_http_app(self.plane, self.health.refresh)
        http_port = await self._serve(self._http_app, s.http_port)
        metrics_port = await self._serve(build_metrics_app(self.plane), s.metrics_port)
        try:
            await self.plane.start(s.engines, s.weights, s.sticky)
        except BaseException:
            for runner in self._runners:
                await runner.cleanup()
            await self.plane.drain()
            raise
        self._grpc = build_grpc_server(self.plane, self.health)
        grpc_port = self._grpc.add_insecure_port(f"{s.host}:{s.grpc_port}")
        await self._grpc.start()
        await self.health.refresh()
        self.ports = BoundPorts(grpc_port, http_port, metrics_port)
        log.info("serving: grpc %s, http %s, metrics %s", grpc_port, http_port, metrics_port)
        return self.ports

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.settings.drain_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, port)
        await site.start()
        self._runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        """Graceful: not-ready first, then answer what was accepted, then exit."""
        if self._stopped.is_set():
            return
        self.health.stopping = True
        if self._http_app is not None:
            self._http_app[STOPPING_KEY][0] = True
        await self.health.refresh()
        if self.settings.drain_delay_s:
            # Keep serving while load balancers see the readiness change and stop sending.
            await asyncio.sleep(self.settings.drain_delay_s)
        if self._grpc is not None:
            await self._grpc.stop(grace=self.settings.drain_timeout_s)
        # The metrics runner goes last, so the final counts can still be scraped meanwhile.
        for runner in self._runners:
            await runner.cleanup()
        await self.plane.drain()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve_until_signalled(settings: ServeSettings, ready_line: bool = True) -> None:
    server = RecommendationServer(settings)
    ports = await server.start()
    freeze_heap()  # engines and id maps loaded: keep full collections out of the tail
    if ready_line:
        # One parseable line, so scripts and tests know the bound ports (port 0 = any free).
        print(
            f"recops serve ready grpc={ports.grpc} http={ports.http} metrics={ports.metrics}",
            flush=True,
        )
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    log.info("signal received: draining")
    await server.stop()
