"""Child processes of the quickstart: stages that run to completion, and services.

Every child gets its own process group, so Ctrl-C (or an error) stops it and
everything it started (Ray workers, loaders) and leaves no stray process or port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import ValidationError

from recops_contracts.loadtest import LoadReport


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServingPorts:
    """The runtime's loopback ports (free ones unless given); the tests use it too."""

    grpc: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)  # the admin API's own (loopback) port

    def flags(self) -> list[str]:
        """`recops serve`'s flags to listen on these ports."""
        return [
            "--host",
            "127.0.0.1",
            "--grpc-port",
            str(self.grpc),
            "--http-port",
            str(self.http),
            "--metrics-port",
            str(self.metrics),
            "--admin-port",
            str(self.admin),
        ]


class StageError(RuntimeError):
    """A stage's command exited non-zero; the message points at its log."""


def recops_command(*args: str) -> list[str]:
    """The `recops` CLI of this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "recops_cli", *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The quickstart is the one-machine path: a local Ray, never a configured cluster.
    env.pop("RAY_ADDRESS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop_group(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _pump(
    stream: IO[str],
    log_file: IO[str],
    on_line: Callable[[str], None] | None,
    keep: list[str] | None = None,
) -> None:
    for line in stream:
        log_file.write(line)
        log_file.flush()
        if keep is not None:
            keep.append(line)
        if on_line is not None and line.strip():
            on_line(line.rstrip())


def run_stage(
    args: Sequence[str],
    log_path: Path,
    on_line: Callable[[str], None] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> tuple[int, str]:
    """Run a command to completion; returns (exit code, stdout).

    Both streams go to ``log_path`` as they come (and each line to ``on_line``, for the
    progress display); stdout is also returned, for the stage's JSON summary.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stdout: list[str] = []
    with log_path.open("w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, log_file, on_line, stdout)),
            threading.Thread(target=_pump, args=(proc.stderr, log_file, on_line)),
        ]
        for pump in pumps:
            pump.start()
        try:
            proc.wait()
        finally:
            _stop_group(proc)
            for pump in pumps:
                pump.join(timeout=5)
    if proc.returncode not in ok_codes:
        raise StageError(f"`{' '.join(args[3:])}` exited with {proc.returncode}; see {log_path}")
    return proc.returncode, "".join(stdout)


def last_json_object(text: str) -> dict[str, Any]:
    """The last JSON object printed on stdout (the stage's summary)."""
    # The object starts a line: after the last "\n{", or at the very start (rfind's -1 + 1).
    loaded = json.loads(text[text.rfind("\n{") + 1 :])
    if not isinstance(loaded, dict):
        raise ValueError("expected a JSON object")
    return loaded


class Service:
    """A long-running child (the runtime), stopped with its whole process group."""

    def __init__(self, args: Sequence[str], log_path: Path, name: str = "the runtime") -> None:
        self.name = name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w", encoding="utf-8")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            list(args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StageError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise StageError(f"{self.name} was not ready within {timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        _stop_group(self.proc, grace_s=35.0)
        self._log.close()


class TrafficLoop:
    """Simulated users: `recops loadtest` runs back to back until stopped.

    Each run is bounded in count and time; their JSON reports are kept for the report.
    """

    def __init__(self, args_for: Callable[[int], list[str]], folder: Path) -> None:
        self._args_for = args_for
        self._folder = folder
        self._stop = threading.Event()
        self._proc: subprocess.Popen[Any] | None = None
        self.runs = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> TrafficLoop:
        self._folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            index = self.runs
            with (self._folder / f"loadtest-{index:03d}.log").open("w") as log_file:
                self._proc = subprocess.Popen(
                    self._args_for(index),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=_child_env(),
                    start_new_session=True,
                )
                code = self._proc.wait()
            self.runs += 1
            if code != 0 and not self._stop.is_set():
                self.failures += 1
                self._stop.wait(1.0)

    def reports(self) -> list[LoadReport]:
        """The finished runs' reports (a run still writing its report is left out)."""
        out = []
        for path in sorted(self._folder.glob("loadtest-*.json")):
            try:
                out.append(LoadReport.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError):
                continue
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            _stop_group(self._proc)
        self._thread.join(timeout=15)

    def finish(self, timeout_s: float = 120.0) -> None:
        """Let the run in progress end by itself (its report written: every request it sent
        is counted), start no other."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        self.stop()
