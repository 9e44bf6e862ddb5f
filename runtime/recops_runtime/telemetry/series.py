"""The runtime's Prometheus metrics. Names and labels are the shared contract
``recops_contracts.metrics`` (each family and its labels are listed there), which rollouts,
retraining signals, alerts and dashboards query.

Each service owns its own registry, so several services can live in one process (tests).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from recops_contracts import metrics as m
from recops_contracts.drift import THRESHOLDED
from recops_contracts.feedback import CLICK
from recops_runtime.telemetry.traffic_drift import WindowReport

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
UNVERSIONED = m.UNVERSIONED


class BudgetedStore(Protocol):
    """A per-user store bounded in estimated bytes (``recops_runtime.stores``)."""

    @property
    def bytes(self) -> int: ...

    @property
    def max_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ServedSeries:
    """The series every answered request updates, labelled once per version (``labels()``
    costs a lock and a tuple per call, which adds up at thousands of requests a second)."""

    ok: Counter
    latency: Histogram
    recommendations: Counter


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._served: dict[tuple[str, str], ServedSeries] = {}
        r = self.registry
        version, target = m.VERSION_LABEL, m.TARGET_LABEL
        self.requests = Counter(
            m.REQUESTS,
            "Recommend requests by status code.",
            [version, target, m.CODE_LABEL],
            registry=r,
        )
        self.latency = Histogram(
            m.LATENCY,
            "Server-side Recommend latency.",
            [version, target],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            m.BATCH_SIZE,
            "Requests per engine call.",
            [version, target],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            m.QUEUE_DEPTH, "Requests waiting for the engine.", [version], registry=r
        )
        self.recommendations = Counter(
            m.RECOMMENDATIONS, "Recommendation lists served.", [version, target], registry=r
        )
        self.fallbacks = Counter(
            m.FALLBACKS,
            "Popularity fallbacks by reason.",
            [version, m.REASON_LABEL],
            registry=r,
        )
        self.unknown_items = Counter(
            m.UNKNOWN_ITEMS,
            "History items unknown to the model (dropped).",
            [version],
            registry=r,
        )
        self.feedback_events = Counter(
            m.FEEDBACK_EVENTS, "Feedback events by type.", [version, m.EVENT_LABEL], registry=r
        )
        self.online_hits = Counter(
            m.ONLINE_HITS,
            "Clicks on an item the same request recommended.",
            [version],
            registry=r,
        )
        self.drift = Gauge(
            m.DRIFT,
            "Last full window's drift statistic.",
            [version, m.STATISTIC_LABEL],
            registry=r,
        )
        self.drift_triggered = Gauge(
            m.DRIFT_TRIGGERED,
            "1 while a statistic breached its threshold for enough windows.",
            [version, m.STATISTIC_LABEL],
            registry=r,
        )
        self.drift_windows = Counter(
            m.DRIFT_WINDOWS, "Full windows of requests judged for drift.", [version], registry=r
        )
        self.topk_cache_lookups = Counter(
            m.TOPK_CACHE,
            "Per-user top-k cache lookups by result (hit: no engine call).",
            [version, m.RESULT_LABEL],
            registry=r,
        )
        self._cache_series: dict[tuple[str, bool], Counter] = {}
        self.feedback_unattributed = Counter(
            m.FEEDBACK_UNATTRIBUTED,
            "Feedback not attributed to a recommendation served to the same user within the "
            "attribution window: never an online hit, not training data by default.",
            [m.EVENT_LABEL, m.REASON_LABEL],
            registry=r,
        )
        self.store_bytes = Gauge(
            m.STORE_BYTES, "Estimated bytes a per-user store holds.", [m.STORE_LABEL], registry=r
        )
        self.store_budget = Gauge(
            m.STORE_BUDGET, "Bytes a per-user store may hold.", [m.STORE_LABEL], registry=r
        )
        self.model_info = Gauge(
            m.MODEL_INFO,
            "1 for each loaded version.",
            [version, target, m.MODEL_VERSION_LABEL],
            registry=r,
        )

    def version_loaded(self, version: str, target: str, model_version: str) -> None:
        self.model_info.labels(version, target, model_version).set(1)
        self.queue_depth.labels(version).set(0)
        # Start the series a rollout compares at zero: a counter that first appears with
        # its first request makes `increase()` miss that request's window, which is the
        # candidate's first minutes of traffic.
        self.requests.labels(version, target, "OK").inc(0)
        self.recommendations.labels(version, target).inc(0)
        self.online_hits.labels(version).inc(0)
        self.feedback_events.labels(version, CLICK).inc(0)

    def drift_window(self, version: str, report: WindowReport) -> None:
        """Export one judged window."""
        for statistic, value in report.statistics.items():
            self.drift.labels(version, statistic).set(value)
        for statistic in THRESHOLDED:
            self.drift_triggered.labels(version, statistic).set(statistic in report.triggered)
        self.drift_windows.labels(version).inc()

    def served(self, version: str, target: str) -> ServedSeries:
        series = self._served.get((version, target))
        if series is None:
            series = self._served[version, target] = ServedSeries(
                self.requests.labels(version, target, "OK"),
                self.latency.labels(version, target),
                self.recommendations.labels(version, target),
            )
        return series

    def topk_cache(self, version: str, *, hit: bool) -> None:
        series = self._cache_series.get((version, hit))
        if series is None:
            label = "hit" if hit else "miss"
            series = self._cache_series[version, hit] = self.topk_cache_lookups.labels(
                version, label
            )
        series.inc()

    def watch_store(self, name: str, store: BudgetedStore) -> None:
        """Export a store's bytes, read at each scrape, and its budget."""
        self.store_bytes.labels(name).set_function(lambda: store.bytes)
        self.store_budget.labels(name).set(store.max_bytes)

    def version_unloaded(self, version: str, target: str, model_version: str) -> None:
        # Remove rather than zero: a dashboard's count of loaded versions stays right.
        with contextlib.suppress(KeyError):
            self.model_info.remove(version, target, model_version)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
