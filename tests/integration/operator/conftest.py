"""An emulated API server on 127.0.0.1, the real operator against it, and a real MLflow.

One API server and one operator per test module (Kopf takes seconds to stop); every
module gets a fresh Kopf registry from ``build_registry``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from recops_cli.quickstart.processes import free_port
from recops_operator.settings import OperatorSettings
from recops_testkit.background import BackgroundOperator
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.processes import start_mlflow_server, stop, wait_until_ready

T = TypeVar("T")


class OperatorHandle:
    """The operator in its own thread and loop (Kopf cancels every task of its loop on stop)."""

    def __init__(self, url: str, settings: OperatorSettings) -> None:
        self._op = BackgroundOperator(url, settings)
        self.liveness_url = settings.liveness_endpoint

    @property
    def calls(self) -> set[tuple[str, str, str]]:
        return self._op.calls

    async def start(self) -> None:
        await asyncio.to_thread(self._op.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._op.stop)


def operator_settings(**overrides: Any) -> OperatorSettings:
    base: dict[str, Any] = {
        "standalone": True,
        "liveness_endpoint": None,
        "resync_interval": 0.5,
        "log_format": "plain",
        "mlflow_wait_seconds": 120,
    }
    return OperatorSettings(**{**base, **overrides})


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def operator(api: ApiServerEmulator) -> AsyncIterator[OperatorHandle]:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    handle = OperatorHandle(str(api.url), operator_settings(liveness_endpoint=liveness))
    await handle.start()
    yield handle
    await handle.stop()


class MlflowServer:
    """A real `mlflow server` on loopback (SQLite, local artifacts), started in the background
    so that its start-up overlaps the first tests; ``wait_ready`` before talking to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_mlflow_server(root, port)
        # The client library is slow to import: warm it up meanwhile, off the event loop.
        self._warm = threading.Thread(target=importlib.import_module, args=("mlflow.tracking",))
        self._warm.start()

    def wait_ready(self, timeout: float = 300) -> None:
        # About 5 s on an idle machine; minutes when the cores are shared with training jobs.
        log = self.root / "server.log"
        url = f"{self.url}/health"
        wait_until_ready(self.proc, url, "mlflow server", log, timeout=timeout, interval=0.3)
        self._warm.join()

    def close(self) -> None:
        stop(self.proc)
        self._warm.join()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.close()
