"""Servers the tests start as child processes: MLflow's, waiting for one to answer, stopping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def wait_until_ready(
    proc: subprocess.Popen[Any],
    url: str,
    what: str,
    log: Path,
    *,
    timeout: float = 120,
    interval: float = 0.5,
) -> None:
    """Poll ``url`` until it answers 200; a process that exits first fails with its log."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            tail = log.read_text()[-2000:]
            raise TimeoutError(f"{what} was not ready within {timeout:g} s:\n{tail}")
        time.sleep(interval)


def start_mlflow_server(
    root: Path, port: int, *, serve_artifacts: bool = False
) -> subprocess.Popen[bytes]:
    """`mlflow server` on 127.0.0.1:``port`` with SQLite and local artifacts under ``root``,
    logging to ``root/server.log``; not ready yet when this returns. With
    ``serve_artifacts`` clients upload artifacts over HTTP, as pods do, instead of writing
    to the folder themselves."""
    with (root / "server.log").open("wb") as log:
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination" if serve_artifacts else "--default-artifact-root",
                str(root / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # The server's own store, not one a developer's environment points at.
            env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        )


def stop(*procs: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Ask every process to end, then kill those still running ``timeout`` seconds later."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
