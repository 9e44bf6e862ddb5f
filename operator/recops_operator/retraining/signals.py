"""A RecModel's live signals, read from Prometheus: the stable version's online hit rate
over the drift window, its drift statistics the serving pods report as triggered, and the
feedback events since training last started."""

from __future__ import annotations

import time

from recops_operator.clients.prometheus import PrometheusClient, QueryError, UnreachableError
from recops_operator.queries import promql
from recops_operator.retraining.decision import LiveSignals

# Prometheus keeps a few weeks by default; a longer range only costs the query more.
MAX_RANGE_SECONDS = 30 * 24 * 3600


async def read_signals(
    prometheus: PrometheusClient,
    scope: promql.Scope,
    *,
    stable: str | None,
    window_seconds: float | None,
    since_seconds: float | None,
    statistics: bool = False,
) -> LiveSignals:
    """Asks only for what is given: the hit rate when ``stable`` and ``window_seconds``
    are, the new interactions when ``since_seconds`` is. Never raises: an unreachable
    Prometheus or a refused query comes back as ``error``."""
    hits = recommendations = new = triggered = None
    at = time.time()  # one instant, so hits and recommendations cover the same scrapes
    try:
        if stable is not None and window_seconds is not None:
            rng = promql.window(window_seconds)
            hits = await prometheus.scalar(promql.hits(stable, rng, scope), at)
            recommendations = await prometheus.scalar(
                promql.recommendations(stable, rng, scope), at
            )
        if stable is not None and statistics:
            triggered = await prometheus.scalar(promql.drift_triggered(stable, scope), at)
        if since_seconds is not None:
            rng = promql.window(min(max(since_seconds, 1.0), MAX_RANGE_SECONDS))
            new = await prometheus.scalar(promql.feedback_events(rng, scope), at)
    except (UnreachableError, QueryError) as exc:
        return LiveSignals(stable, hits, recommendations, new, triggered, error=str(exc))
    return LiveSignals(stable, hits, recommendations, new, triggered)
