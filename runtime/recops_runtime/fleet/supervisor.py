"""`recops serve --processes N`: several server processes behind one set of ports.

One Python process is GIL-bound (its event loop, the gRPC poller and the engine workers'
Python share one interpreter) well before its cores are busy, so a server of N processes
runs N complete servers, each with its own engine workers, sharing the gRPC port with
``SO_REUSEPORT`` (the kernel spreads incoming connections among them), and a supervisor
that owns the rest of the pod's face:

- the HTTP port: health (``/readyz`` is ready when every process is), the admin API
  applied to every process at once (:mod:`recops_runtime.fleet.fanout`), and the JSON adapter
  (passed to the processes in turn);
- the metrics port: every process's series merged into one exposition
  (:mod:`recops_runtime.fleet.metrics_merge`);
- users' histories and served lists without Redis (:mod:`recops_runtime.fleet.shared_state_server`).

Shutdown: SIGTERM (or SIGINT) reaches the supervisor, which turns not-ready and passes it
to every process; each drains as a single server does (not-ready, ``--drain-delay-s``,
answers every accepted request, flushes its feedback log) and the supervisor exits once
all have, 0 when all drained cleanly. A process that dies on its own stops the whole
server with status 1, so Kubernetes restarts the pod instead of it serving short-handed
with counters that went backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.fleet.shared_state_server import SharedStateServer
from recops_runtime.fleet.supervisor_http import (
    WorkerClients,
    build_admin_app,
    build_merged_metrics_app,
    build_public_app,
)
from recops_runtime.fleet.worker import worker_main
from recops_runtime.serve_settings import MIN_STORE_BYTES, ServeSettings, usable_cpus
from recops_runtime.server import BoundPorts, WorkerRole
from recops_runtime.wire.admin_auth import AdminToken
from recops_runtime.wire.tls import http_ssl_context

log = logging.getLogger(__name__)


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words: multiprocessing's exit code is the negative signal
    number for a process a signal ended."""
    if exitcode is None:
        return "ended (its exit status could not be read)"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


@dataclass
class WorkerProcess:
    index: int
    process: Any  # multiprocessing's SpawnProcess (untyped in the standard library stubs)
    conn: Connection
    http: int = 0
    metrics: int = 0

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)


def worker_settings(settings: ServeSettings, processes: int) -> ServeSettings:
    """What each process runs: its share of the CPUs sizes its engine workers and threads,
    and its share of the byte budgets its own stores (served lists, top-k cache) hold; the
    histories live in the supervisor (or Redis)."""
    share = max(1, usable_cpus() // processes)
    batching = settings.batching.model_copy(update={"cpus": settings.batching.cpus or share})
    budgets = settings.store_budgets()
    return settings.model_copy(
        update={
            "batching": batching,
            "processes": 1,
            "served_max_bytes": max(MIN_STORE_BYTES, budgets.served // processes),
            "topk_cache_max_bytes": max(MIN_STORE_BYTES, budgets.topk_cache // processes),
        }
    )


def reserve_port(host: str, port: int) -> socket.socket:
    """Binds (without listening) the shared gRPC port with SO_REUSEPORT, so port 0 resolves
    to one free port that every worker then binds too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServiceError(
            Status.FAILED_PRECONDITION, f"grpc-port: cannot bind {host}:{port}: {exc}"
        ) from exc
    return sock


class Supervisor:
    def __init__(self, settings: ServeSettings, processes: int) -> None:
        self.settings = settings
        self.processes = processes
        self.workers: list[WorkerProcess] = []
        self._runners: list[web.AppRunner] = []
        self._state: SharedStateServer | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="recops-serve-"))
        self.stopping = [False]
        self.failed = False
        self.ports: BoundPorts | None = None
        self._clients: WorkerClients | None = None

    async def start(self) -> BoundPorts:
        s = self.settings
        # Read before any process starts: a missing token or certificate fails fast.
        tls = http_ssl_context(s)
        token = AdminToken(s.admin_token_file) if s.admin_token_file else None
        reserved = reserve_port(s.host, s.grpc_port)
        grpc_port = int(reserved.getsockname()[1])
        shared: Path | None = None
        if not s.redis_url:
            shared = self._folder / "state.sock"
            budgets = s.store_budgets()
            self._state = SharedStateServer(
                shared,
                max_users=s.history_max_users,
                max_items=s.history_max_items,
                history_bytes=budgets.history,
                served_bytes=budgets.served,
            )
            await self._state.start()
        try:
            each = worker_settings(s, self.processes).model_copy(update={"grpc_port": grpc_port})
            context = multiprocessing.get_context("spawn")
            for index in range(self.processes):
                parent, child = context.Pipe(duplex=False)
                process = context.Process(
                    target=worker_main,
                    args=(
                        each.model_dump_json(),
                        WorkerRole(index, shared),
                        child,
                        _log_level(),
                        os.getpid(),
                    ),
                    name=f"recops-serve-{index}",
                )
                process.start()
                child.close()  # the worker holds the only writing end: EOF when it dies
                self.workers.append(WorkerProcess(index, process, parent))
            await asyncio.gather(*(self._wait_ready(w) for w in self.workers))
        except BaseException:
            await self._stop_workers()
            await self._close()
            raise
        finally:
            reserved.close()
        clients = self._clients = WorkerClients(
            {w.index: (w.pid, w.http, w.metrics) for w in self.workers}
        )
        public = build_public_app(clients, self.stopping, s.http_read_timeout_s)
        http = await self._serve(public, s.http_port, s.host, tls)
        admin_app = build_admin_app(clients, token=token, read_timeout_s=s.http_read_timeout_s)
        admin = await self._serve(admin_app, s.admin_port, s.admin_host, tls)
        metrics = await self._serve(build_merged_metrics_app(clients), s.metrics_port, s.host)
        self.ports = BoundPorts(grpc_port, http, metrics, admin)
        log.info(
            "serving with %d processes: grpc %s, http %s, metrics %s, admin %s on %s",
            self.processes,
            grpc_port,
            http,
            metrics,
            admin,
            s.admin_host,
        )
        return self.ports

    async def _wait_ready(self, worker: WorkerProcess) -> None:
        try:
            message = await asyncio.to_thread(worker.conn.recv)
        except EOFError:
            worker.process.join(1.0)  # reaped, so its exit code is known
            message = ("error", f"{describe_exit(worker.process.exitcode)} while starting")
        if message[0] != "ready":
            raise ServiceError(Status.FAILED_PRECONDITION, f"process {worker.index}: {message[1]}")
        worker.http, worker.metrics = message[1], message[2]

    async def _serve(
        self, app: web.Application, port: int, host: str, tls: ssl.SSLContext | None = None
    ) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        self._runners.append(runner)
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    def watch(self, stop: asyncio.Event) -> None:
        """Sets ``stop`` when a worker exits on its own (not asked to)."""
        loop = asyncio.get_running_loop()

        def exited(worker: WorkerProcess) -> None:
            loop.remove_reader(worker.process.sentinel)
            if not self.stopping[0]:
                # The sentinel turns readable as the process closes its files, a moment
                # before the kernel has its exit status: wait that moment, not forever.
                worker.process.join(1.0)
                log.error(
                    "process %d (pid %d) %s: stopping the server",
                    worker.index,
                    worker.pid,
                    describe_exit(worker.process.exitcode),
                )
                self.failed = True
                stop.set()

        for worker in self.workers:
            # The sentinel turns readable when the process ends: no thread waits per worker.
            loop.add_reader(worker.process.sentinel, exited, worker)

    async def stop(self) -> int:
        """Not-ready, then every process drains; the exit status."""
        self.stopping[0] = True
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            loop.remove_reader(worker.process.sentinel)
        await self._stop_workers()
        await self._close()
        codes = [w.process.exitcode for w in self.workers]
        return 1 if self.failed or any(code != 0 for code in codes) else 0

    async def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.terminate()  # SIGTERM: the worker drains
        timeout = self.settings.drain_delay_s + self.settings.drain_timeout_s + 30
        for worker in self.workers:
            await asyncio.to_thread(worker.process.join, timeout)
            if worker.process.is_alive():
                log.error("process %d did not drain in %.0f s; killing it", worker.index, timeout)
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, 10)

    async def _close(self) -> None:
        # After the workers: they hand their last served lists to the state while draining,
        # and the merged metrics stay scrapeable until the end.
        for runner in self._runners:
            await runner.cleanup()
        if self._clients is not None:
            await self._clients.close()
        if self._state is not None:
            await self._state.close()
        with contextlib.suppress(OSError):
            self._folder.rmdir()


async def supervise_until_signalled(
    settings: ServeSettings, processes: int, ready_line: bool = True
) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    supervisor = Supervisor(settings, processes)
    ports = await supervisor.start()
    if ready_line:
        print(f"{ports.ready_line()} processes={processes}", flush=True)
    supervisor.watch(stop_requested)
    await stop_requested.wait()
    log.info("stopping %d processes", processes)
    return await supervisor.stop()


def _log_level() -> int:
    return logging.getLogger().getEffectiveLevel()
