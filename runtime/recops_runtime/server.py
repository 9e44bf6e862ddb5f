"""One server process: the gRPC service, the JSON/HTTP adapter and the metrics endpoint.

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
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web

from recops_runtime.eventloop import freeze_heap
from recops_runtime.registry.version_registry import VersionRegistry
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.scoring.model_version import EngineLoader
from recops_runtime.serve_settings import ServeSettings
from recops_runtime.stores.feedback_log import FeedbackLog
from recops_runtime.stores.history import HistoryStore, InMemoryHistoryStore, RedisHistoryStore
from recops_runtime.stores.served import LocalServedLists, RedisServedLists, ServedLists
from recops_runtime.stores.shared_state import (
    SharedHistoryStore,
    SharedServedLists,
    SharedStateClient,
)
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_runtime.wire.admin_auth import AdminToken
from recops_runtime.wire.admin_http import add_admin_routes, build_admin_app
from recops_runtime.wire.grpc_service import HealthReporter, build_grpc_server
from recops_runtime.wire.http_service import STOPPING_KEY, build_http_app, build_metrics_app
from recops_runtime.wire.tls import grpc_credentials, http_ssl_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoundPorts:
    grpc: int
    http: int
    metrics: int
    admin: int = 0  # 0: no admin listener (a worker serves admin on its private HTTP port)

    def ready_line(self) -> str:
        """The one parseable line scripts and tests read the bound ports from."""
        line = f"recops serve ready grpc={self.grpc} http={self.http} metrics={self.metrics}"
        return f"{line} admin={self.admin}" if self.admin else line


@dataclass(frozen=True)
class WorkerRole:
    """This server is one process of a multi-process server
    (:mod:`recops_runtime.fleet.supervisor`): it shares the gRPC port, keeps its HTTP and
    metrics ports private on loopback (the supervisor fans the admin API out to them and
    merges their metrics), and writes its own feedback log folder inside the configured
    one."""

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
        budgets = settings.store_budgets()
        if settings.redis_url:
            history = RedisHistoryStore(
                settings.redis_url,
                max_items=settings.history_max_items,
                ttl_s=settings.history_ttl_s,
            )
            served = RedisServedLists(settings.redis_url, max_bytes=budgets.served)
        elif role is not None and role.shared_state is not None:
            self._shared = SharedStateClient(role.shared_state)
            history = SharedHistoryStore(self._shared)
            served = SharedServedLists(self._shared, max_bytes=budgets.served)
        else:
            history = InMemoryHistoryStore(
                settings.history_max_users, settings.history_max_items, budgets.history
            )
            served = LocalServedLists(max_bytes=budgets.served)
        log_dir = settings.feedback_log
        if log_dir is not None and role is not None:
            log_dir = log_dir / f"process-{role.index}"  # one writer per folder
        self.registry = VersionRegistry(
            batching=settings.batching,
            metrics=RuntimeMetrics(),
            loader=loader,
            drift=settings.drift,
            engines_roots=settings.engines_roots(),
        )
        self.plane = DataPlane(
            self.registry,
            history=history,
            feedback_log=(
                FeedbackLog(log_dir, rotate_interval_s=settings.feedback_rotate_s)
                if log_dir
                else None
            ),
            history_limit=settings.history_max_items,
            served=served,
            topk_cache_users=settings.topk_cache_users,
            topk_cache_bytes=budgets.topk_cache,
            attribution_window_s=settings.attribution_window_s,
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
        self._http_app = build_http_app(self.plane, read_timeout_s=s.http_read_timeout_s)
        admin_port = 0
        if worker:
            # The supervisor drives this process's admin API on its private loopback port.
            add_admin_routes(
                self._http_app, self.plane, self.registry, self.health.refresh, internal=True
            )
            http_port = await self._serve(self._http_app, 0)
        else:
            tls = http_ssl_context(s)
            token = AdminToken(s.admin_token_file) if s.admin_token_file else None
            http_port = await self._serve(self._http_app, s.http_port, s.host, tls)
            admin_app = build_admin_app(
                self.plane,
                self.registry,
                self.health.refresh,
                token=token,
                read_timeout_s=s.http_read_timeout_s,
            )
            admin_port = await self._serve(admin_app, s.admin_port, s.admin_host, tls)
        metrics_app = build_metrics_app(self.plane)
        metrics_port = await self._serve(metrics_app, 0 if worker else s.metrics_port)
        try:
            await self.plane.start()
            await self.registry.load_all(s.engines, s.weights, s.sticky)
        except BaseException:
            for runner in self._runners:
                await runner.cleanup()
            await self.plane.drain()
            raise
        self._grpc = build_grpc_server(
            self.plane, self.health, reuse_port=worker, reflection=s.reflection
        )
        address = f"{s.host}:{s.grpc_port}"
        credentials = grpc_credentials(s)
        if credentials is None:
            grpc_port = self._grpc.add_insecure_port(address)
        else:
            grpc_port = self._grpc.add_secure_port(address, credentials)
        await self._grpc.start()
        await self.health.refresh()
        self.ports = BoundPorts(grpc_port, http_port, metrics_port, admin_port)
        log.info(
            "serving: grpc %s, http %s, metrics %s, admin %s on %s",
            grpc_port,
            http_port,
            metrics_port,
            admin_port or "-",
            s.admin_host,
        )
        return self.ports

    async def _serve(
        self,
        app: web.Application,
        port: int,
        host: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.settings.drain_timeout_s)
        await runner.setup()
        # A worker's HTTP ports are its supervisor's business only.
        if self.role is not None:
            host = "127.0.0.1"
        site = web.TCPSite(runner, host or self.settings.host, port, ssl_context=tls)
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


async def serve_alone_until_signalled(settings: ServeSettings, ready_line: bool = True) -> int:
    """One server process serves until SIGTERM or SIGINT, then drains; the exit status
    (0: a clean drain)."""
    server = RecommendationServer(settings)
    ports = await server.start()
    freeze_heap()  # engines and id maps loaded: keep full collections out of the tail
    if ready_line:
        # One parseable line, so scripts and tests know the bound ports (port 0 = any free).
        print(ports.ready_line(), flush=True)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    log.info("signal received: draining")
    await server.stop()
    return 0
