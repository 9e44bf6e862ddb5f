"""A real Prometheus (Debian's binary) on loopback, scraping targets the test names."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml
from ports import free_port
from processes import start_mlflow_server, stop, wait_until_ready


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
    stop(*procs)


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback with SQLite and local artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_mlflow_server(root, port)
    try:
        wait_until_ready(proc, f"{url}/health", "mlflow server", root / "server.log", interval=0.3)
        yield url
    finally:
        stop(proc)
