"""A real Prometheus (Debian's binary) on loopback, scraping targets the test names."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest
import yaml

from recops_cli.quickstart.processes import free_port
from recops_cli.quickstart.prometheus import prometheus_config, wait_for_samples
from recops_testkit.processes import start_mlflow_server, stop, wait_until_ready


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
