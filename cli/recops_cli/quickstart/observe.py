"""What the loop reads from Prometheus: when a version's drift triggered, and the drift
statistics and online hit rate per version over the loop.

Through the operator's Prometheus client and PromQL builders, so the quickstart asks the
questions the operator's retraining asks, in the same words.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from recops_cli.quickstart.processes import StageError
from recops_contracts.metrics import STATISTIC_LABEL, VERSION_LABEL
from recops_operator.clients.prometheus import PrometheusClient, QueryError, UnreachableError
from recops_operator.queries import promql

DRIFT_TIMEOUT_S = 180.0
QUERY_TIMEOUT_S = 10.0
# The hit rate's window in the loop's plot: a few analysis intervals of simulated traffic.
HIT_RATE_WINDOW = "10s"

# statistic or "hit_rate" -> version -> [(unix time, value)]
SeriesByVersion = dict[str, dict[str, list[tuple[float, float]]]]

T = TypeVar("T")


def _ask(question: Coroutine[Any, Any, T]) -> T:
    """Run one conversation with Prometheus; its failures end the stage, with the reason."""
    try:
        return asyncio.run(question)
    except (QueryError, UnreachableError) as exc:
        raise StageError(f"Prometheus: {exc}") from exc


def wait_for_drift(url: str, version: str, on_wait: Callable[[str], None]) -> dict[str, float]:
    """Block until a drift statistic of ``version`` has triggered; returns the triggered
    statistics with their last window's value."""
    return _ask(_wait_for_drift(url, version, on_wait))


async def _wait_for_drift(
    url: str, version: str, on_wait: Callable[[str], None]
) -> dict[str, float]:
    async with PrometheusClient(url, timeout=QUERY_TIMEOUT_S) as prometheus:
        deadline = time.monotonic() + DRIFT_TIMEOUT_S
        while time.monotonic() < deadline:
            triggered = await prometheus.vector(promql.drift_triggered_statistics(version))
            fired = [s.labels[STATISTIC_LABEL] for s in triggered]
            if fired:
                values = {
                    s.labels[STATISTIC_LABEL]: s.value
                    for s in await prometheus.vector(promql.drift_values(version))
                }
                return {name: values.get(name, float("nan")) for name in sorted(fired)}
            windows = await prometheus.vector(promql.drift_windows(version))
            judged = int(windows[0].value) if windows else 0
            on_wait(f"{judged} windows judged, no statistic triggered yet")
            await asyncio.sleep(1.0)
    raise StageError(
        f"no drift statistic of version {version} triggered within {DRIFT_TIMEOUT_S:.0f}s "
        "of the shift; see logs/serve.log and recops_drift in Prometheus"
    )


def read_series(url: str, start: float, end: float) -> SeriesByVersion:
    """Drift statistics and online hit rate per version over the loop, from Prometheus."""
    return _ask(_read_series(url, start, end))


async def _read_series(url: str, start: float, end: float) -> SeriesByVersion:
    series: SeriesByVersion = {}
    async with PrometheusClient(url, timeout=QUERY_TIMEOUT_S) as prometheus:
        for drift in await prometheus.range(promql.drift_values(), start, end):
            by_version = series.setdefault(drift.labels[STATISTIC_LABEL], {})
            by_version[drift.labels[VERSION_LABEL]] = drift.points
        hit_rate = promql.hit_rate_by_version(HIT_RATE_WINDOW)
        for rate in await prometheus.range(hit_rate, start, end):
            # A window without recommendations has no rate (0/0, or x/0).
            series.setdefault("hit_rate", {})[rate.labels[VERSION_LABEL]] = [
                (t, v) for t, v in rate.points if not math.isnan(v) and v != math.inf
            ]
    return series
