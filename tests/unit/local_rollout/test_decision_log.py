"""What the one-machine driver's log keeps of each measurement: both versions' values, the
threshold and the unit, so that a reader sees why the rollout went the way it did."""

from __future__ import annotations

from datetime import UTC, datetime

from recops_operator.api.rollout_policy import AnalysisMetric, BuiltinMetric, Comparison
from recops_operator.local_rollout.driver import logged_metric
from recops_operator.rollout.evaluate import evaluate
from recops_operator.rollout.observations import Observation, VersionWindow, builtin_observation

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))


def window(requests: float, errors: float, slow: float, hits: float) -> VersionWindow:
    """``requests`` of which 2% take ``slow`` seconds and the rest 5 ms."""
    fast, tail = requests * 0.98, requests * 0.02
    buckets = tuple(
        (b, (fast if b >= 0.005 else 0.0) + (tail if b >= slow else 0.0)) for b in BOUNDS
    )
    return VersionWindow(
        requests=requests,
        errors=errors,
        latency_buckets=buckets,
        recommendations=requests - errors,
        hits=hits,
    )


STABLE = window(900, 0, 0.02, 108)  # hit rate 0.12
CANDIDATE = window(300, 3, 0.4, 45)  # hit rate 45/297


def metric(
    name: str, builtin: BuiltinMetric, condition: Comparison, threshold: float
) -> AnalysisMetric:
    return AnalysisMetric(
        name=name,
        builtin=builtin,
        success_condition=condition,
        threshold=threshold,
        min_sample_size=100,
    )


def logged(m: AnalysisMetric) -> dict[str, object]:
    observation = builtin_observation(m, CANDIDATE, STABLE)
    return logged_metric(evaluate(m, observation, NOW), m, observation).model_dump(by_alias=True)


def test_the_error_rate_is_logged_for_both_versions_as_a_fraction() -> None:
    row = logged(metric("errors", BuiltinMetric.ERROR_RATE, Comparison.LE, 0.01))
    assert row["value"] == 3 / 300 and row["stableValue"] == 0.0
    assert row["unit"] == "fraction" and row["threshold"] == 0.01
    assert "candidateValue" not in row  # the value is the candidate's own


def test_the_latency_is_logged_for_both_versions_in_seconds() -> None:
    row = logged(metric("p99", BuiltinMetric.LATENCY_P99, Comparison.LE, 0.1))
    assert row["phase"] == "Failed" and row["unit"] == "seconds"
    assert isinstance(row["value"], float) and row["value"] > 0.25
    assert isinstance(row["stableValue"], float) and row["stableValue"] < 0.025


def test_a_comparison_logs_each_rate_beside_their_difference() -> None:
    row = logged(metric("hits", BuiltinMetric.HIT_RATE_VS_STABLE, Comparison.GE, -0.03))
    assert row["stableValue"] == 108 / 900 and row["candidateValue"] == 45 / 297
    assert row["value"] == 45 / 297 - 108 / 900
    assert row["condition"] == ">= -0.03" and row["unit"] == "fraction"


def test_a_promql_metric_has_no_unit_and_no_stable_value() -> None:
    m = AnalysisMetric.model_validate(
        {
            "name": "custom",
            "prometheus": {"query": "vector(1)"},
            "successCondition": ">=",
            "threshold": 0.5,
        }
    )
    row = logged_metric(evaluate(m, Observation(value=0.7), NOW), m, Observation(value=0.7))
    dumped = row.model_dump(by_alias=True)
    assert dumped["value"] == 0.7 and dumped["phase"] == "Successful"
    assert not {"unit", "stableValue", "candidateValue"} & set(dumped)
