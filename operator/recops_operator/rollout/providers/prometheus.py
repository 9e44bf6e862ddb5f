"""Observations from Prometheus' HTTP API (``/api/v1/query``, instant queries).

A query that Prometheus refuses or that returns no sample becomes a failed observation
(Inconclusive); Prometheus itself being unreachable, or answering 5xx, is an outage (the
rollout pauses).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import httpx

from recops_operator.api.rollout_policy import AnalysisMetric
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.providers import promql
from recops_operator.rollout.stats import Proportion


class QueryError(Exception):
    """Prometheus answered, but not with one number."""


class UnreachableError(Exception):
    """Prometheus did not answer."""


class PrometheusProvider:
    """Runs built-in and PromQL metrics against one default Prometheus (or a metric's own)."""

    def __init__(
        self, address: str, timeout: float = 5.0, scope: promql.Scope = promql.NO_SCOPE
    ) -> None:
        """``scope``: label matchers that select one RecModel's series (see
        :func:`promql.scope_of`); empty where Prometheus scrapes one service only."""
        self.address = address.rstrip("/")
        self.timeout = timeout
        self.scope = scope

    async def observe(
        self, plan: MeasurementPlan, stable: str, candidate: str
    ) -> Mapping[str, Observation]:
        rng = promql.window(plan.window_seconds)
        # One evaluation instant for every query: a built-in metric divides the answers of
        # several queries, and a scrape landing between two of them would pair one window's
        # clicks with another's requests.
        at = time.time()
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return {
                m.name: await self._observe_one(client, m, stable, candidate, rng, at)
                for m in plan.metrics
            }

    async def _observe_one(
        self,
        client: httpx.AsyncClient,
        metric: AnalysisMetric,
        stable: str,
        candidate: str,
        rng: str,
        at: float,
    ) -> Observation:
        try:
            if metric.prometheus is not None:
                address = (metric.prometheus.address or self.address).rstrip("/")
                query = promql.render_custom(metric.prometheus.query, stable, candidate, self.scope)
                value = await query_scalar(client, address, query, at)
                return Observation(value=value)
            assert metric.builtin is not None
            queries = promql.builtin_queries(metric.builtin, stable, candidate, rng, self.scope)
            values = {
                k: await query_scalar(client, self.address, q, at) for k, q in queries.items()
            }
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
        return Observation(candidate=Proportion(num("errors"), num("requests")))
    if "p99" in values:
        return Observation(value=values["p99"], sample_size=round(num("count")))
    return Observation(
        candidate=Proportion(num("cand_successes"), num("cand_trials")),
        stable=Proportion(num("stable_successes"), num("stable_trials")),
    )


async def query_scalar(
    client: httpx.AsyncClient, address: str, query: str, at: float | None = None
) -> float | None:
    """One number from an instant query (at ``at``, Unix seconds; default now): a scalar,
    or a vector of exactly one sample.

    None when the vector is empty (no data). A vector of several series is a QueryError:
    the metric's query must aggregate (for example with ``sum``).
    """
    try:
        params = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
        resp = await client.get(f"{address}/api/v1/query", params=params)
    except httpx.HTTPError as exc:
        raise UnreachableError(f"Prometheus at {address}: {exc!r}") from exc
    if resp.status_code >= 500:
        raise UnreachableError(f"Prometheus at {address} answered HTTP {resp.status_code}")
    try:
        body = resp.json()
    except ValueError as exc:
        raise QueryError(f"HTTP {resp.status_code}, not JSON: {resp.text[:200]}") from exc
    if body.get("status") != "success":
        raise QueryError(f"{body.get('errorType', 'error')}: {body.get('error', '')} in {query!r}")
    data = body["data"]
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return float(result[1])
    if kind != "vector":
        raise QueryError(f"{query!r} returned a {kind}, not a scalar or a one-sample vector")
    if not result:
        return None
    if len(result) > 1:
        raise QueryError(f"{query!r} returned {len(result)} series; aggregate it to one (sum)")
    return float(result[0]["value"][1])
