"""Reading the runtime's own /metrics: the counters it really exports, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from recops_cli.quickstart.processes import free_port
from recops_operator.analysis_providers.scrape import ScrapeProvider
from recops_operator.api.rollout import MeasurementPhase
from recops_operator.api.rollout_policy import (
    AnalysisMetric,
    BuiltinMetric,
    Comparison,
    PrometheusQuery,
)
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.evaluate import evaluate
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_testkit.metrics_endpoint import exposed

METRICS = [
    AnalysisMetric(
        name="errors",
        builtin=BuiltinMetric.ERROR_RATE,
        success_condition=Comparison.LE,
        threshold=0.01,
        min_sample_size=50,
    ),
    AnalysisMetric(
        name="p99",
        builtin=BuiltinMetric.LATENCY_P99,
        success_condition=Comparison.LE,
        threshold=0.1,
        min_sample_size=50,
    ),
    AnalysisMetric(
        name="hits",
        builtin=BuiltinMetric.HIT_RATE_VS_STABLE,
        success_condition=Comparison.GE,
        threshold=-0.01,
        min_sample_size=50,
    ),
    AnalysisMetric(
        name="ctr",
        builtin=BuiltinMetric.CTR_VS_STABLE,
        success_condition=Comparison.GE,
        threshold=-0.01,
        min_sample_size=50,
    ),
    AnalysisMetric(
        name="custom",
        prometheus=PrometheusQuery(query="up"),
        success_condition=Comparison.GE,
        threshold=1,
    ),
]
PLAN = MeasurementPlan(METRICS, 3.0)


@pytest.fixture
def runtime_metrics() -> Iterator[tuple[RuntimeMetrics, str]]:
    metrics = RuntimeMetrics()
    with exposed(metrics.registry) as port:
        yield metrics, f"http://127.0.0.1:{port}/metrics"


def serve(
    m: RuntimeMetrics, version: str, requests: int, errors: int, hits: int, slow: float
) -> None:
    for i in range(requests):
        code = "INTERNAL" if i < errors else "OK"
        m.requests.labels(version, "cpu-onnxruntime", code).inc()
        if code == "OK":
            m.latency.labels(version, "cpu-onnxruntime").observe(slow if i % 50 == 0 else 0.004)
            m.recommendations.labels(version, "cpu-onnxruntime").inc()
    m.requests.labels(version, "cpu-onnxruntime", "INVALID_ARGUMENT").inc(5)  # not an error
    m.feedback_events.labels(version, "click").inc(hits)
    m.online_hits.labels(version).inc(hits)


async def test_deltas_between_readings_judge_each_version(
    runtime_metrics: tuple[RuntimeMetrics, str],
) -> None:
    m, url = runtime_metrics
    serve(m, "v1", 1000, 0, 120, 0.004)  # traffic before the window must not count
    provider = ScrapeProvider([url])
    await provider.reset_baseline()
    serve(m, "v1", 900, 0, 108, 0.004)
    serve(m, "v2", 100, 5, 3, 0.3)
    obs = await provider.observe(PLAN, stable="v1", candidate="v2")

    errors = obs["errors"].candidate
    assert errors is not None and (errors.successes, errors.trials) == (5, 105)
    hits = obs["hits"]
    assert hits.candidate is not None and hits.stable is not None
    assert (hits.candidate.successes, hits.candidate.trials) == (3, 95)
    assert (hits.stable.successes, hits.stable.trials) == (108, 900)
    assert obs["p99"].sample_size == 95
    assert obs["p99"].value is not None and obs["p99"].value > 0.25

    now = datetime.now(UTC)
    judged = {m.name: evaluate(m, obs[m.name], now) for m in METRICS}
    assert judged["errors"].phase == MeasurementPhase.FAILED
    assert judged["p99"].phase == MeasurementPhase.FAILED
    assert judged["hits"].phase == MeasurementPhase.FAILED
    assert judged["custom"].phase == MeasurementPhase.INCONCLUSIVE
    assert "need Prometheus" in judged["custom"].message

    # The next window starts where this one ended.
    serve(m, "v2", 100, 0, 12, 0.004)
    again = await provider.observe(PLAN, stable="v1", candidate="v2")
    assert again["errors"].candidate is not None and again["errors"].candidate.successes == 0


async def test_unreachable_runtime_is_an_outage() -> None:
    provider = ScrapeProvider([f"http://127.0.0.1:{free_port()}/metrics"])
    await provider.reset_baseline()
    obs = await provider.observe(PLAN, stable="v1", candidate="v2")
    assert all(o.unreachable for o in obs.values())
