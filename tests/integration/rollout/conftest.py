"""A real Prometheus (Debian's binary) on loopback, scraping targets the test names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from ports import free_port


def prometheus_config(
    targets: list[str],
    scrape_interval: str = "1s",
    labels: dict[str, dict[str, str]] | None = None,
) -> dict[str, object]:
    """One scrape job; ``labels`` gives a target the target labels a ServiceMonitor would
    (namespace, recops_io_recmodel)."""
    labels = labels or {}
    static = [{"targets": [t], **({"labels": labels[t]} if t in labels else {})} for t in targets]
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{"job_name": "recops-runtime", "static_configs": static}],
    }


def wait_for_samples(address: str, job: str = "recops-runtime", timeout: float = 60.0) -> None:
    """Poll until every target of ``job`` was scraped up (the first sample takes seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rsp = httpx.get(f"{address}/api/v1/query", params={"query": f'up{{job="{job}"}}'})
            result = rsp.json()["data"]["result"]
            if result and all(r["value"][1] == "1" for r in result):
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prometheus at {address} scraped no sample of {job} in {timeout}s")


@pytest.fixture(scope="module")
def start_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., str]]:
    """Start Prometheus scraping ``targets`` (host:port, with optional target labels);
    returns its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is missing: run `make deb-deps`")
    root = tmp_path_factory.mktemp("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str], labels: dict[str, dict[str, str]] | None = None) -> str:
        folder = root / str(len(procs))
        folder.mkdir()
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(targets, labels=labels)))
        port = free_port()
        with (folder / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        address = f"http://127.0.0.1:{port}"
        wait_for_samples(address)
        return address

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback with SQLite and local artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    url = f"http://127.0.0.1:{free_port()}"
    with (root / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                "--port", url.rsplit(":", 1)[1], "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--default-artifact-root", str(root / "artifacts"),
            ],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("mlflow server was not healthy within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
