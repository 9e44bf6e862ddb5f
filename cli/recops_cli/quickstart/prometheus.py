"""A real Prometheus beside the quickstart's runtime, for the loop (`--loop`).

What a cluster's Prometheus does with a ServiceMonitor, on one machine: scrape the runtime
every second and answer PromQL, so the loop reads drift and hit rate the way the operator
does. Debian's and the upstream `prometheus` binary both work; the loop says what to
install when there is none.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from recops_cli.quickstart.processes import Service, StageError, free_port

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
        self._client = httpx.Client(base_url=self.url, timeout=10.0)

    def wait_ready(self) -> None:
        self.service.wait_ready(f"{self.url}/-/ready", timeout_s=60.0)
        wait_for_samples(self.url)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's series (``metric`` labels and ``value``)."""
        return self._api("query", {"query": promql})

    def query_range(
        self, promql: str, start: float, end: float, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query's series (``metric`` labels and ``values``)."""
        return self._api("query_range", {"query": promql, "start": start, "end": end, "step": step})

    def _api(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        body = self._client.get(f"/api/v1/{path}", params=params).raise_for_status().json()
        if body.get("status") != "success":
            raise StageError(f"Prometheus refused {params}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self._client.close()
        self.service.stop()
