"""The runtime's Prometheus metrics (names and labels are a contract with rollouts).

``recops_requests_total{version,target,code}``: requests by gRPC status name.
``recops_request_latency_seconds{version,target}``: server-side latency of Recommend.
``recops_batch_size{version,target}``: requests per engine call.
``recops_queue_depth{version}``: requests waiting for the engine.
``recops_recommendations_total{version,target}``: recommendation lists served.
``recops_fallbacks_total{version,reason}``: popularity fallbacks by reason.
``recops_unknown_items_total{version}``: history items the model does not know, dropped.
``recops_feedback_events_total{version,event}``: feedback events by type.
``recops_online_hits_total{version}``: clicks on an item the same request recommended;
online hit rate = hits / recommendations.
``recops_model_info{version,target,model_version}``: 1 for each loaded version.

Each service owns its own registry, so several services can live in one process (tests).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
UNVERSIONED = "none"  # label for requests rejected before a version was chosen


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
        self.requests = Counter(
            "recops_requests", "Recommend requests by status code.",
            ["version", "target", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "recops_request_latency_seconds", "Server-side Recommend latency.",
            ["version", "target"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "recops_batch_size", "Requests per engine call.",
            ["version", "target"], buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "recops_queue_depth", "Requests waiting for the engine.", ["version"], registry=r
        )
        self.recommendations = Counter(
            "recops_recommendations", "Recommendation lists served.",
            ["version", "target"], registry=r,
        )  # fmt: skip
        self.fallbacks = Counter(
            "recops_fallbacks", "Popularity fallbacks by reason.", ["version", "reason"],
            registry=r,
        )  # fmt: skip
        self.unknown_items = Counter(
            "recops_unknown_items", "History items unknown to the model (dropped).",
            ["version"], registry=r,
        )  # fmt: skip
        self.feedback_events = Counter(
            "recops_feedback_events", "Feedback events by type.", ["version", "event"],
            registry=r,
        )  # fmt: skip
        self.online_hits = Counter(
            "recops_online_hits", "Clicks on an item the same request recommended.",
            ["version"], registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "recops_model_info", "1 for each loaded version.",
            ["version", "target", "model_version"], registry=r,
        )  # fmt: skip

    def version_loaded(self, version: str, target: str, model_version: str) -> None:
        self.model_info.labels(version, target, model_version).set(1)
        self.queue_depth.labels(version).set(0)
        # Start the series a rollout compares at zero: a counter that first appears with
        # its first request makes `increase()` miss that request's window, which is the
        # candidate's first minutes of traffic.
        self.requests.labels(version, target, "OK").inc(0)
        self.recommendations.labels(version, target).inc(0)
        self.online_hits.labels(version).inc(0)
        self.feedback_events.labels(version, "click").inc(0)

    def served(self, version: str, target: str) -> ServedSeries:
        series = self._served.get((version, target))
        if series is None:
            series = self._served[version, target] = ServedSeries(
                self.requests.labels(version, target, "OK"),
                self.latency.labels(version, target),
                self.recommendations.labels(version, target),
            )
        return series

    def version_unloaded(self, version: str, target: str, model_version: str) -> None:
        # Remove rather than zero: a dashboard's count of loaded versions stays right.
        with contextlib.suppress(KeyError):
            self.model_info.remove(version, target, model_version)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
