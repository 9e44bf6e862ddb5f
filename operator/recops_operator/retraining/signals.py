"""A RecModel's live signals, read from Prometheus: the stable version's online hit rate
over the drift window, and the feedback events since training last started."""

from __future__ import annotations

import time

import httpx

from recops_operator.decisions.retraining import LiveSignals
from recops_operator.rollout.providers import promql
from recops_operator.rollout.providers.prometheus import (
    QueryError,
    UnreachableError,
    query_scalar,
)

# Prometheus keeps a few weeks by default; a longer range only costs the query more.
MAX_RANGE_SECONDS = 30 * 24 * 3600


async def read_signals(
    address: str,
    scope: promql.Scope,
    *,
    stable: str | None,
    window_seconds: float | None,
    since_seconds: float | None,
    timeout: float = 10.0,
) -> LiveSignals:
    """Asks only for what is given: the hit rate when ``stable`` and ``window_seconds``
    are, the new interactions when ``since_seconds`` is. Never raises: an unreachable
    Prometheus or a refused query comes back as ``error``."""
    hits = recommendations = new = None
    at = time.time()  # one instant, so hits and recommendations cover the same scrapes
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            if stable is not None and window_seconds is not None:
                rng = promql.window(window_seconds)
                hits = await query_scalar(client, address, promql.hits(stable, rng, scope), at)
                recommendations = await query_scalar(
                    client, address, promql.recommendations(stable, rng, scope), at
                )
            if since_seconds is not None:
                rng = promql.window(min(max(since_seconds, 1.0), MAX_RANGE_SECONDS))
                new = await query_scalar(client, address, promql.feedback_events(rng, scope), at)
    except (UnreachableError, QueryError) as exc:
        return LiveSignals(stable, hits, recommendations, new, error=str(exc))
    return LiveSignals(stable, hits, recommendations, new)
