"""The operator in a background thread with its own event loop.

Kopf treats every task created in its loop after start-up as its own and cancels them all
on shutdown, so callers that keep their own tasks (tests, benchmarks) run it in a
separate thread and loop, as ``kopf.testing.KopfRunner`` does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from recops_operator.clients.kubernetes import KubeClient, KubeConnection
from recops_operator.runner import HANDLER_MODULES, run_operator
from recops_operator.settings import OperatorSettings


class BackgroundOperator:
    """Start, stop and restart an operator; ``calls`` records its API calls across restarts."""

    def __init__(
        self, server: str, settings: OperatorSettings, modules: Sequence[str] = HANDLER_MODULES
    ) -> None:
        self.connection = KubeConnection(server=server)
        self.settings = settings
        self.modules = modules
        self.calls: set[tuple[str, str, str]] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def _main(self, ready: threading.Event) -> None:
        kube = KubeClient(self.connection)
        kube.calls = self.calls
        try:
            asyncio.run(
                run_operator(
                    self.settings,
                    self.connection,
                    self.modules,
                    stop_flag=self._stop,
                    ready_flag=ready,
                    kube=kube,
                )
            )
        except BaseException as exc:  # handed to the caller in stop()
            self._error = exc

    def start(self, timeout: float = 60) -> None:
        """Start and wait until Kopf reports ready (blocking: call it from a thread)."""
        if self._thread is not None:
            raise RuntimeError("the operator is already running")
        self._stop.clear()
        self._error = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name="recops-operator", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the operator was not ready within {timeout} s: {self._error!r}")

    def stop(self, timeout: float = 60) -> None:
        """Stop gracefully (blocking: call it from a thread); re-raise what the operator raised."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the operator did not stop within {timeout} s")
        self._thread = None
        if self._error is not None and not isinstance(self._error, asyncio.CancelledError):
            raise self._error
