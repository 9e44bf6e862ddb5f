"""One Prometheus exposition for a server of several processes.

Each worker process keeps its own registry (as a single-process server does) on a
private port; the supervisor's ``/metrics`` scrapes them all and merges the samples
into the series one process would expose: counters and histograms are summed, the queue
depth is summed, and the other gauges (loaded versions, drift statistics and triggers)
take the largest value. So the names and labels stay the shared contract
(``recops_contracts.metrics``) and every query of the rollouts, retraining signals,
alerts and dashboards reads a multi-process pod like a single-process one.

Chosen over prometheus-client's multiprocess mode, which needs an environment variable
set before the library is imported, a folder of memory-mapped files that outlives
crashed processes, and a mode per gauge, and which would merge the several services that
tests run in one process. A restarted worker would reset its counters; the supervisor
stops the whole server when a worker dies instead, so the sums never go down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from recops_contracts import metrics as m

# Gauges whose processes add up (requests waiting in each); others take the maximum.
SUMMED_GAUGES = frozenset({m.QUEUE_DEPTH, m.STORE_BYTES, m.STORE_BUDGET})


def merge_expositions(texts: Sequence[str]) -> bytes:
    """The merged exposition (text format 0.0.4) of several processes' expositions."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                values[family.name] = {}
            series = values[family.name]
            summed = family.type in ("counter", "histogram", "summary") or (
                family.name in SUMMED_GAUGES
            )
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = series.get(key)
                if old is None:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(old, sample.value)  # the earliest process's start
                elif summed:
                    series[key] = old + sample.value
                else:
                    series[key] = max(old, sample.value)
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families.values()))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
