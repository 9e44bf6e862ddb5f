"""Observations straight from the runtime's /metrics endpoint, without Prometheus.

Each measurement reads the exposition text, sums the counters per version and takes the
increase since the previous reading (the baseline), which the driver resets whenever the
weights change, so a window never mixes two traffic splits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from recops_operator.clients.scrape import ScrapeClient, ScrapeError
from recops_operator.queries import runtime_metrics as rm
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.observations import Observation, VersionWindow, builtin_observation


@dataclass
class VersionCounters:
    """Cumulative counters of one version, summed over targets and processes."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    recommendations: float = 0.0
    hits: float = 0.0
    clicks: float = 0.0

    def minus(self, earlier: VersionCounters | None) -> VersionWindow:
        base = earlier or VersionCounters()

        def inc(now: float, before: float) -> float:
            # A counter that went down was reset (process restart): count from zero.
            return now - before if now >= before else now

        buckets = tuple(
            (le, inc(count, base.buckets.get(le, 0.0)))
            for le, count in sorted(self.buckets.items())
        )
        return VersionWindow(
            requests=inc(self.requests, base.requests),
            errors=inc(self.errors, base.errors),
            latency_buckets=buckets,
            recommendations=inc(self.recommendations, base.recommendations),
            hits=inc(self.hits, base.hits),
            clicks=inc(self.clicks, base.clicks),
        )


Snapshot = dict[str, VersionCounters]


def parse_exposition(texts: Iterable[str]) -> Snapshot:
    """Per-version counters from one or more exposition texts (one per runtime process)."""
    snap: Snapshot = defaultdict(VersionCounters)
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                version = sample.labels.get(rm.VERSION_LABEL)
                if version is None:
                    continue
                c = snap[version]
                name, value = sample.name, float(sample.value)
                if name == rm.REQUESTS:
                    c.requests += value
                    if sample.labels.get(rm.CODE_LABEL, "OK") not in rm.CLIENT_CODES:
                        c.errors += value
                elif name == f"{rm.LATENCY}_bucket":
                    le = float(sample.labels["le"])
                    c.buckets[le] = c.buckets.get(le, 0.0) + value
                elif name == rm.RECOMMENDATIONS:
                    c.recommendations += value
                elif name == rm.ONLINE_HITS:
                    c.hits += value
                elif (
                    name == rm.FEEDBACK_EVENTS
                    and sample.labels.get(rm.EVENT_LABEL) == rm.CLICK_EVENT
                ):
                    c.clicks += value
    return dict(snap)


class ScrapeProvider:
    """Reads the runtime's /metrics URLs; PromQL metrics need the Prometheus provider."""

    def __init__(self, urls: Sequence[str], timeout: float = 5.0) -> None:
        self.client = ScrapeClient(urls, timeout)
        self._baseline: Snapshot | None = None

    async def snapshot(self) -> Snapshot:
        return parse_exposition(await self.client.expositions())

    async def reset_baseline(self) -> None:
        """Start a new window now (after the weights changed); an outage leaves none."""
        try:
            self._baseline = await self.snapshot()
        except ScrapeError:
            self._baseline = None

    async def observe(
        self, plan: MeasurementPlan, stable: str, candidate: str
    ) -> Mapping[str, Observation]:
        try:
            now = await self.snapshot()
        except ScrapeError as exc:
            return {m.name: Observation.outage(str(exc)) for m in plan.metrics}
        base, self._baseline = self._baseline, now
        if base is None:
            # No earlier reading (first one, or the first after an outage): this one opens
            # the window; like an outage, it delays the judgement without counting.
            message = "no earlier reading of the runtime's metrics to compare with"
            return {m.name: Observation.outage(message) for m in plan.metrics}
        cand = now.get(candidate, VersionCounters()).minus(base.get(candidate))
        stab = now.get(stable, VersionCounters()).minus(base.get(stable))
        result: dict[str, Observation] = {}
        for m in plan.metrics:
            if m.builtin is None:
                result[m.name] = Observation.failed(
                    "PromQL metrics need Prometheus: pass --prometheus to recops rollout"
                )
            else:
                result[m.name] = builtin_observation(m, cand, stab)
        return result
