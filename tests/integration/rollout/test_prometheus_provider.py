"""The built-in metrics as PromQL, evaluated by a real Prometheus on the runtime's metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping

import pytest
from prometheus_client import start_http_server

from recops_cli.quickstart.processes import free_port
from recops_operator.analysis_providers.prometheus import PrometheusProvider
from recops_operator.api.rollout_policy import (
    AnalysisMetric,
    BuiltinMetric,
    Comparison,
    PrometheusQuery,
)
from recops_operator.clients.prometheus import PrometheusClient
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.observations import Observation
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_testkit.metrics_endpoint import exposed
from recops_testkit.polling import read_until


def metric(name: str, **kw: object) -> AnalysisMetric:
    return AnalysisMetric.model_validate(
        {"name": name, "success_condition": Comparison.GE, "threshold": 0.0, **kw}
    )


@pytest.fixture
def exporter() -> Iterator[tuple[RuntimeMetrics, str]]:
    metrics = RuntimeMetrics()
    with exposed(metrics.registry) as port:
        yield metrics, f"127.0.0.1:{port}"


async def test_builtin_promql_against_real_prometheus(
    exporter: tuple[RuntimeMetrics, str], start_prometheus: Callable[[list[str]], str]
) -> None:
    m, target = exporter
    for version in ("v1", "v2"):  # the series exist before the window starts, as in a runtime
        m.requests.labels(version, "cpu", "OK").inc(0)
        m.recommendations.labels(version, "cpu").inc(0)
        m.online_hits.labels(version).inc(0)
        m.feedback_events.labels(version, "click").inc(0)
    address = start_prometheus([target])
    # Steady traffic for a few scrapes: v2 fails 10% of its requests and hits less often.
    for _ in range(8):
        m.requests.labels("v1", "cpu", "OK").inc(90)
        m.requests.labels("v2", "cpu", "OK").inc(9)
        m.requests.labels("v2", "cpu", "UNAVAILABLE").inc(1)
        m.recommendations.labels("v1", "cpu").inc(90)
        m.recommendations.labels("v2", "cpu").inc(9)
        m.online_hits.labels("v1").inc(18)
        m.online_hits.labels("v2").inc(1)
        m.feedback_events.labels("v1", "click").inc(18)
        m.feedback_events.labels("v2", "click").inc(1)
        for _ in range(9):
            m.latency.labels("v2", "cpu").observe(0.004)
        await asyncio.sleep(1.0)
    metrics = [
        metric("errors", builtin=BuiltinMetric.ERROR_RATE),
        metric("p99", builtin=BuiltinMetric.LATENCY_P99),
        metric("hits", builtin=BuiltinMetric.HIT_RATE_VS_STABLE),
        metric("ctr", builtin=BuiltinMetric.CTR_VS_STABLE),
        metric(
            "custom",
            prometheus=PrometheusQuery(
                query='sum(rate(recops_requests_total{version="{{candidate}}"}[5s]))'
            ),
        ),
        metric("empty", prometheus=PrometheusQuery(query='recops_requests_total{version="v9"}')),
        metric("broken", prometheus=PrometheusQuery(query="sum(rate(")),
        metric("many", prometheus=PrometheusQuery(query="recops_requests_total")),
    ]
    obs = await PrometheusProvider(PrometheusClient(address)).observe(
        MeasurementPlan(metrics, 6.0), "v1", "v2"
    )

    # Whole scrapes, not extrapolations: each scrape saw whole rounds of increments, so
    # the counts are whole rounds and the rates exact.
    errors = obs["errors"].candidate
    assert errors is not None and errors.trials > 0 and errors.trials % 10 == 0
    assert errors.successes * 10 == errors.trials
    assert obs["p99"].value is not None and 0.003 < obs["p99"].value <= 0.005
    hits = obs["hits"]
    assert hits.candidate is not None and hits.stable is not None
    assert hits.stable.trials > 0 and hits.stable.trials % 90 == 0
    assert hits.stable.successes * 5 == hits.stable.trials
    assert hits.candidate.trials % 9 == 0 and hits.candidate.successes * 9 == hits.candidate.trials
    assert obs["ctr"].candidate is not None and obs["ctr"].candidate.trials > 0
    assert obs["custom"].value is not None and obs["custom"].value > 0
    assert obs["empty"].value is None and obs["empty"].error is None
    assert obs["broken"].error is not None and not obs["broken"].unreachable
    assert obs["many"].error is not None and "aggregate" in obs["many"].error


async def test_counters_born_inside_the_window_count_in_full(
    exporter: tuple[RuntimeMetrics, str], start_prometheus: Callable[[list[str]], str]
) -> None:
    # A candidate's series appear with its first request, after Prometheus started.
    m, target = exporter
    address = start_prometheus([target])
    for _ in range(4):
        m.requests.labels("v7", "cpu", "OK").inc(20)
        m.requests.labels("v7", "cpu", "INTERNAL").inc(1)
        m.recommendations.labels("v7", "cpu").inc(20)
        m.online_hits.labels("v7").inc(3)
        await asyncio.sleep(1.0)
    metrics = [
        metric("errors", builtin=BuiltinMetric.ERROR_RATE),
        metric("hits", builtin=BuiltinMetric.HIT_RATE_VS_STABLE),
    ]
    provider = PrometheusProvider(PrometheusClient(address))

    def counted(obs: Mapping[str, Observation]) -> bool:
        errors = obs["errors"].candidate
        return errors is not None and errors.trials >= 84

    # Until the last increments are scraped (1 s scrapes, later on a loaded machine).
    obs = await read_until(
        lambda: provider.observe(MeasurementPlan(metrics, 30.0), "v1", "v7"), counted
    )
    errors, hits = obs["errors"].candidate, obs["hits"].candidate
    assert errors is not None and (errors.successes, errors.trials) == (4, 84)
    assert hits is not None and (hits.successes, hits.trials) == (12, 80)


async def test_a_restarted_runtime_counts_requests_on_both_sides_of_the_reset(
    start_prometheus: Callable[[list[str]], str],
) -> None:
    port = free_port()
    before = RuntimeMetrics()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=before.registry)
    before.recommendations.labels("v1", "cpu").inc(0)
    address = start_prometheus([f"127.0.0.1:{port}"])
    await asyncio.sleep(2.0)  # the zero is scraped: the series predates the window
    started = time.monotonic()
    for _ in range(3):
        before.recommendations.labels("v1", "cpu").inc(100)
        await asyncio.sleep(1.0)
    server.shutdown()
    server.server_close()
    thread.join(5)
    after = RuntimeMetrics()  # the restarted process counts from zero again
    server, thread = start_http_server(port, addr="127.0.0.1", registry=after.registry)
    try:
        for _ in range(3):
            after.recommendations.labels("v1", "cpu").inc(10)
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.5)
        seconds = time.monotonic() - started + 1.5  # from a scrape of the zero
        metrics = [metric("hits", builtin=BuiltinMetric.HIT_RATE_VS_STABLE)]
        obs = await PrometheusProvider(PrometheusClient(address)).observe(
            MeasurementPlan(metrics, seconds), "v1", "v2"
        )
    finally:
        server.shutdown()
        thread.join(5)
    stable = obs["hits"].stable
    # 330 counted; across a reset the count is increase()'s estimate, while a plain
    # difference would answer 30, the count since the restart alone.
    assert stable is not None and 200 <= stable.trials <= 450, stable


async def test_unreachable_prometheus_is_an_outage() -> None:
    metrics = [metric("errors", builtin=BuiltinMetric.ERROR_RATE)]
    provider = PrometheusProvider(PrometheusClient(f"http://127.0.0.1:{free_port()}"))
    obs = await provider.observe(MeasurementPlan(metrics, 3.0), "v1", "v2")
    assert obs["errors"].unreachable


async def test_a_scoped_provider_reads_only_its_recmodels_series(
    start_prometheus: Callable[..., str],
) -> None:
    """Two RecModels serve a version "3" each; a rollout of one must not see the other's."""
    from recops_operator.queries import promql

    exporters = []
    for _ in range(2):
        m = RuntimeMetrics()
        port = free_port()
        server, thread = start_http_server(port, addr="127.0.0.1", registry=m.registry)
        exporters.append((m, f"127.0.0.1:{port}", server, thread))
    (good, good_target, *_), (bad, bad_target, *_) = exporters
    for m in (good, bad):
        for version in ("2", "3"):
            m.requests.labels(version, "cpu", "OK").inc(0)
            m.requests.labels(version, "cpu", "INTERNAL").inc(0)
    labels = {
        good_target: {"namespace": "ml", "recops_io_recmodel": "films"},
        bad_target: {"namespace": "ml", "recops_io_recmodel": "books"},
    }
    try:
        address = start_prometheus([good_target, bad_target], labels)
        for _ in range(4):
            good.requests.labels("3", "cpu", "OK").inc(50)
            bad.requests.labels("3", "cpu", "INTERNAL").inc(50)  # books' "3" is broken
            await asyncio.sleep(1.0)
        metrics = [metric("errors", builtin=BuiltinMetric.ERROR_RATE)]
        plan = MeasurementPlan(metrics, 30.0)
        scoped = PrometheusProvider(PrometheusClient(address), scope=promql.scope_of("ml", "films"))
        unscoped = PrometheusProvider(PrometheusClient(address))

        def counted(obs: Mapping[str, Observation]) -> bool:
            errors = obs["errors"].candidate
            return errors is not None and errors.trials >= 400

        # Until both targets' last increments are scraped: unscoped, both count.
        everything = (await read_until(lambda: unscoped.observe(plan, "2", "3"), counted))["errors"]
        assert everything.candidate is not None and everything.candidate.successes == 200
        films = (await scoped.observe(plan, "2", "3"))["errors"].candidate
        assert films is not None and (films.successes, films.trials) == (0, 200)
    finally:
        for _, _, server, thread in exporters:
            server.shutdown()
            thread.join(5)


async def test_the_queries_of_one_measurement_share_one_evaluation_time(
    exporter: tuple[RuntimeMetrics, str], start_prometheus: Callable[[list[str]], str]
) -> None:
    """A scrape landing between two queries of one built-in metric would pair one window's
    clicks with another's requests; a recording proxy in front of Prometheus shows every
    query of a measurement pinned to one instant."""
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    _, target = exporter
    upstream = start_prometheus([target])
    seen: list[dict[str, list[str]]] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
            answer = httpx.get(upstream + self.path, timeout=10)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        metrics = [
            metric("errors", builtin=BuiltinMetric.ERROR_RATE),
            metric("hits", builtin=BuiltinMetric.HIT_RATE_VS_STABLE),
        ]
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        before = time.time()
        obs = await PrometheusProvider(PrometheusClient(address)).observe(
            MeasurementPlan(metrics, 5.0), "v1", "v2"
        )
        after = time.time()
    finally:
        proxy.shutdown()
        thread.join(5)
    assert not any(o.error or o.unreachable for o in obs.values()), obs
    assert len(seen) == 8  # errors: 2 queries for each version, hits: 4
    (instant,) = {q["time"][0] for q in seen}
    assert before - 0.001 <= float(instant) <= after  # sent with millisecond precision
