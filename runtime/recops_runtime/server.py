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
from pathlib import Path

import grpc
from aiohttp import web

from recops_runtime.dataplane import DataPlane, runs_on_gpu
from recops_runtime.eventloop import freeze_heap
from recops_runtime.feedback_log import FeedbackLog
from recops_runtime.grpc_service import HealthReporter, build_grpc_server
from recops_runtime.history import HistoryStore, InMemoryHistoryStore, RedisHistoryStore
from recops_runtime.http_service import STOPPING_KEY, build_http_app, build_metrics_app
from recops_runtime.metrics import RuntimeMetrics
from recops_runtime.served import LocalServedLists, RedisServedLists, ServedLists
from recops_runtime.settings import ServeSettings
from recops_runtime.shared_state import SharedHistoryStore, SharedServedLists, SharedStateClient
from recops_runtime.versions import EngineLoader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoundPorts:
    grpc: int
    http: int
    metrics: int


@dataclass(frozen=True)
class WorkerRole:
    """This server is one process of a multi-process server (:mod:`recops_runtime.supervisor`):
    it shares the gRPC port, keeps its HTTP and metrics ports private on loopback (the
    supervisor fans the admin API out to them and merges their metrics), and writes its
    own feedback log folder inside the configured one."""

    index: int
    # The supervisor's history and served lists; None when Redis holds them.
    shared_state: Path | None


class RecommendationServer:
    def __init__(
        self,
        settings: ServeSettings,
        loader: EngineLoader | None = None,
        role: WorkerRole | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        history: HistoryStore
        served: ServedLists
        self._shared: SharedStateClient | None = None
        if settings.redis_url:
            history = RedisHistoryStore(settings.redis_url, max_items=settings.history_max_items)
            served = RedisServedLists(settings.redis_url)
        elif role is not None and role.shared_state is not None:
            self._shared = SharedStateClient(role.shared_state)
            history, served = SharedHistoryStore(self._shared), SharedServedLists(self._shared)
        else:
            history = InMemoryHistoryStore(settings.history_max_users, settings.history_max_items)
            served = LocalServedLists()
        log_dir = settings.feedback_log
        if log_dir is not None and role is not None:
            log_dir = log_dir / f"process-{role.index}"  # one writer per folder
        self.plane = DataPlane(
            batching=settings.batching,
            metrics=RuntimeMetrics(),
            history=history,
            feedback_log=(
                FeedbackLog(log_dir, rotate_interval_s=settings.feedback_rotate_s)
                if log_dir
                else None
            ),
            loader=loader,
            history_limit=settings.history_max_items,
            served=served,
            drift=settings.drift,
            topk_cache_users=settings.topk_cache_users,
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
        if self._shared is not None:
            await self._shared.connect()
        await self.health.refresh()
        # Liveness, readiness (false until warmed up) and metrics answer during warm-up, so
        # a slow engine load is not mistaken for a dead process.
        worker = self.role is not None
        self._http_app = build_http_app(self.plane, self.health.refresh, internal=worker)
        http_port = await self._serve(self._http_app, 0 if worker else s.http_port)
        metrics_app = build_metrics_app(self.plane)
        metrics_port = await self._serve(metrics_app, 0 if worker else s.metrics_port)
        try:
            await self.plane.start(s.engines, s.weights, s.sticky)
        except BaseException:
            for runner in self._runners:
                await runner.cleanup()
            await self.plane.drain()
            raise
        self._grpc = build_grpc_server(self.plane, self.health, reuse_port=worker)
        grpc_port = self._grpc.add_insecure_port(f"{s.host}:{s.grpc_port}")
        await self._grpc.start()
        await self.health.refresh()
        self.ports = BoundPorts(grpc_port, http_port, metrics_port)
        log.info("serving: grpc %s, http %s, metrics %s", grpc_port, http_port, metrics_port)
        return self.ports

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.settings.drain_timeout_s)
        await runner.setup()
        # A worker's HTTP ports are its supervisor's business only.
        host = "127.0.0.1" if self.role is not None else self.settings.host
        site = web.TCPSite(runner, host, port)
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


async def serve_until_signalled(settings: ServeSettings, ready_line: bool = True) -> int:
    """Serves until SIGTERM or SIGINT, then drains; the exit status (0: a clean drain)."""
    processes = resolved_processes(settings)
    if processes > 1:
        from recops_runtime.supervisor import supervise_until_signalled

        return await supervise_until_signalled(settings, processes, ready_line)
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
    return 0


def resolved_processes(settings: ServeSettings) -> int:
    """``--processes``, or one per usable CPU; 1 when an engine runs on a GPU (the device,
    not the interpreter, is the shared resource there)."""
    if settings.processes is not None:
        return settings.processes
    if any(runs_on_gpu(path) for path in settings.engines.values()):
        return 1
    return settings.resolved_processes()
