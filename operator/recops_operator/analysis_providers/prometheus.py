"""Observations from Prometheus: the built-in metrics as PromQL, and users' own queries.

A query that Prometheus refuses or that returns no sample becomes a failed observation
(Inconclusive); Prometheus itself being unreachable, or answering 5xx, is an outage (the
rollout pauses).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from recops_operator.api.rollout_policy import AnalysisMetric
from recops_operator.clients.prometheus import PrometheusClient, QueryError, UnreachableError
from recops_operator.queries import promql
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.stats import Proportion


class PrometheusProvider:
    """Runs built-in and PromQL metrics against the client's Prometheus (or a metric's own)."""

    def __init__(self, client: PrometheusClient, scope: promql.Scope = promql.NO_SCOPE) -> None:
        """``scope``: label matchers that select one RecModel's series (see
        :func:`promql.scope_of`); empty where Prometheus scrapes one service only."""
        self.client = client
        self.scope = scope

    async def observe(
        self, plan: MeasurementPlan, stable: str, candidate: str
    ) -> Mapping[str, Observation]:
        rng = promql.window(plan.window_seconds)
        # One evaluation instant for every query: a built-in metric divides the answers of
        # several queries, and a scrape landing between two of them would pair one window's
        # clicks with another's requests.
        at = time.time()
        return {
            m.name: await self._observe_one(m, stable, candidate, rng, at) for m in plan.metrics
        }

    async def _observe_one(
        self, metric: AnalysisMetric, stable: str, candidate: str, rng: str, at: float
    ) -> Observation:
        try:
            if metric.prometheus is not None:
                query = promql.render_custom(metric.prometheus.query, stable, candidate, self.scope)
                address = metric.prometheus.address or None
                return Observation(value=await self.client.scalar(query, at, address))
            assert metric.builtin is not None
            queries = promql.builtin_queries(metric.builtin, stable, candidate, rng, self.scope)
            values = {k: await self.client.scalar(q, at) for k, q in queries.items()}
        except UnreachableError as exc:
            return Observation.outage(str(exc))
        except QueryError as exc:
            return Observation.failed(str(exc))
        return _builtin(values)


def _builtin(values: Mapping[str, float | None]) -> Observation:
    def num(key: str) -> float:
        v = values.get(key)
        return 0.0 if v is None or not math.isfinite(v) else v

    if "errors" in values:
        return Observation(
            candidate=Proportion(num("errors"), num("requests")),
            stable_value=Proportion(num("stable_errors"), num("stable_requests")).rate,
        )
    if "p99" in values:
        # Without stable traffic in the window Prometheus answers NaN: that is no value.
        stable_p99 = values.get("stable_p99")
        return Observation(
            value=values["p99"],
            sample_size=round(num("count")),
            stable_value=stable_p99
            if stable_p99 is not None and math.isfinite(stable_p99)
            else None,
        )
    return Observation(
        candidate=Proportion(num("cand_successes"), num("cand_trials")),
        stable=Proportion(num("stable_successes"), num("stable_trials")),
    )
