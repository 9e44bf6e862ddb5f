"""A real Prometheus beside the quickstart's runtime, for the loop (`--loop`).

What a cluster's Prometheus does with a ServiceMonitor, on one machine: scrape the runtime
every second and answer PromQL, so the loop reads drift and hit rate the way the operator
does, through the operator's Prometheus client (``observe.py``). Debian's and the upstream
`prometheus` binary both work; the loop says what to install when there is none.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from recops_cli.quickstart.processes import Service, StageError, free_port
from recops_operator.clients.prometheus import PrometheusClient, QueryError, UnreachableError

JOB = "recops-runtime"


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
        "scrape_configs": [{"job_name": JOB, "static_configs": static}],
    }


def wait_for_samples(address: str, job: str = JOB, timeout: float = 60.0) -> None:
    """Poll until every target of ``job`` was scraped up (the first sample takes seconds).

    The poll runs on an event loop of its own in a worker thread, so that callers inside a
    running loop (async test fixtures) can use it as well as plain scripts."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _wait_for_samples(address, job, timeout)).result()


async def _wait_for_samples(address: str, job: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with PrometheusClient(address, timeout=10.0) as prometheus:
        while time.monotonic() < deadline:
            try:
                up = await prometheus.vector(f'up{{job="{job}"}}')
                if up and all(sample.value == 1.0 for sample in up):
                    return
            except (QueryError, UnreachableError):
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"Prometheus at {address} scraped no sample of {job} in {timeout}s")


class Prometheus:
    """A `prometheus` child scraping one runtime's metrics port every second."""

    def __init__(self, folder: Path, metrics_target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise StageError(
                "the loop reads drift from Prometheus, and no `prometheus` is on PATH: "
                "install it (Debian: apt-get install prometheus; `make deb-deps` does) "
                "or run without --loop"
            )
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config([metrics_target])), encoding="utf-8")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.service = Service(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            folder / "prometheus.log",
            name="Prometheus",
        )

    def wait_ready(self) -> None:
        self.service.wait_ready(f"{self.url}/-/ready", timeout_s=60.0)
        wait_for_samples(self.url)

    def stop(self) -> None:
        self.service.stop()
