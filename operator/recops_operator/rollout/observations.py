"""What an analysis provider hands the engine: one observation per metric.

Both providers (Prometheus' HTTP API, and the runtime's /metrics endpoint scraped
directly) reduce what they read to these types, so the engine judges them identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recops_operator.api.rollout_policy import AnalysisMetric, BuiltinMetric
from recops_operator.rollout.stats import Proportion, histogram_quantile


@dataclass(frozen=True)
class Observation:
    """One metric's raw reading over an analysis window.

    Built-in metrics fill ``candidate`` (and ``stable`` for *-vs-stable ones) or ``value``
    and ``sample_size`` (latency); PromQL metrics fill ``value``. ``error`` marks a query
    that failed (judged Inconclusive); ``unreachable`` marks a metrics outage (the rollout
    pauses and does not count the measurement).

    ``stable_value`` is the stable version's error rate or latency, beside the candidate's:
    only reported, so that a reader can compare them; the candidate alone is judged.
    """

    value: float | None = None
    sample_size: int | None = None
    candidate: Proportion | None = None
    stable: Proportion | None = None
    stable_value: float | None = None
    error: str | None = None
    unreachable: bool = False

    @classmethod
    def failed(cls, message: str) -> Observation:
        return cls(error=message)

    @classmethod
    def outage(cls, message: str) -> Observation:
        return cls(error=message, unreachable=True)


@dataclass(frozen=True)
class VersionWindow:
    """Counter increases of one version over an analysis window (from the runtime's metrics)."""

    requests: float = 0.0
    errors: float = 0.0
    # Cumulative (upper bound, count) buckets of recops_request_latency_seconds.
    latency_buckets: Sequence[tuple[float, float]] = field(default_factory=tuple)
    recommendations: float = 0.0
    hits: float = 0.0
    clicks: float = 0.0


def builtin_observation(
    metric: AnalysisMetric, candidate: VersionWindow, stable: VersionWindow
) -> Observation:
    """The observation of a built-in metric from both versions' windows."""
    kind = metric.builtin
    if kind is BuiltinMetric.ERROR_RATE:
        return Observation(
            candidate=Proportion(candidate.errors, candidate.requests),
            stable_value=Proportion(stable.errors, stable.requests).rate,
        )
    if kind is BuiltinMetric.LATENCY_P99:
        stable_p99 = _p99(stable.latency_buckets)
        if not candidate.latency_buckets:
            return Observation(value=None, sample_size=0, stable_value=stable_p99)
        count = max(c for _, c in candidate.latency_buckets)
        return Observation(
            value=_p99(candidate.latency_buckets),
            sample_size=round(count),
            stable_value=stable_p99,
        )
    if kind is BuiltinMetric.HIT_RATE_VS_STABLE:
        return Observation(
            candidate=Proportion(candidate.hits, candidate.recommendations),
            stable=Proportion(stable.hits, stable.recommendations),
        )
    if kind is BuiltinMetric.CTR_VS_STABLE:
        return Observation(
            candidate=Proportion(candidate.clicks, candidate.recommendations),
            stable=Proportion(stable.clicks, stable.recommendations),
        )
    raise ValueError(f"metric {metric.name!r} is not a built-in metric")


def _p99(buckets: Sequence[tuple[float, float]]) -> float | None:
    return histogram_quantile(0.99, buckets) if buckets else None
