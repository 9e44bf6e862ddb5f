"""A worker process of a multi-process server: one complete server, started by spawn.

It shares the gRPC port with its siblings, reports its private HTTP and metrics ports to
the supervisor through a pipe, and drains on SIGTERM as a single server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from multiprocessing.connection import Connection

from recops_runtime.api.errors import ServiceError
from recops_runtime.eventloop import freeze_heap, run
from recops_runtime.serve_settings import ServeSettings
from recops_runtime.server import RecommendationServer, WorkerRole


def _drain_when_orphaned(parent: int) -> None:
    """Asks the kernel for SIGTERM when the supervisor dies (even by SIGKILL), so no worker
    keeps serving the shared port on its own (Linux; elsewhere the supervisor's own
    shutdown is the only one)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_main(
    settings_json: str, role: WorkerRole, conn: Connection, log_level: int, parent: int
) -> None:
    """A worker process's entry point (spawned: a fresh interpreter, its own heap)."""
    logging.basicConfig(
        level=log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[{role.index}]: %(message)s",
    )
    # The supervisor passes SIGINT on as SIGTERM; a terminal's Ctrl-C reaches both.
    _drain_when_orphaned(parent)
    settings = ServeSettings.model_validate_json(settings_json)
    try:
        sys.exit(run(_serve_worker(settings, role, conn)))
    except ServiceError as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", exc.message))
        sys.exit(2)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve_worker(settings: ServeSettings, role: WorkerRole, conn: Connection) -> int:
    server = RecommendationServer(settings, role=role)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    ports = await server.start()
    freeze_heap()
    conn.send(("ready", ports.http, ports.metrics))
    conn.close()
    await stop_requested.wait()
    await server.stop()
    return 0
