"""Queries against Prometheus' HTTP API (``/api/v1/query``, ``/api/v1/query_range``).

One client serves the rollout analysis, the retraining signals and the quickstart's loop.
What a query means is theirs; this module only turns an answer into numbers (one, or
labelled series), or says why it could not: Prometheus refusing a query, or answering
with several series where one was asked for, is a ``QueryError``; Prometheus not
answering, or answering 5xx, is an ``UnreachableError`` (an outage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import httpx


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value now."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (Unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class QueryError(Exception):
    """Prometheus answered, but not with one number."""


class UnreachableError(Exception):
    """Prometheus did not answer."""


class PrometheusClient:
    """One default Prometheus (``address``), one connection pool; a query may name another."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.address = address.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def scalar(
        self, query: str, at: float | None = None, address: str | None = None
    ) -> float | None:
        """One number from an instant query (at ``at``, Unix seconds; default now): a
        scalar, or a vector of exactly one sample.

        None when the vector is empty (no data). A vector of several series is a
        QueryError: the query must aggregate (for example with ``sum``).
        """
        params = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
        data = await self._data("query", params, address)
        kind, result = data.get("resultType"), data["result"]
        if kind == "scalar":
            return float(result[1])
        if kind != "vector":
            raise QueryError(f"{query!r} returned a {kind}, not a scalar or a one-sample vector")
        if not result:
            return None
        if len(result) > 1:
            raise QueryError(f"{query!r} returned {len(result)} series; aggregate it to one (sum)")
        return float(result[0]["value"][1])

    async def vector(self, query: str) -> list[Sample]:
        """Every series of an instant query, now: its labels and its value."""
        data = await self._data("query", {"query": query})
        if data.get("resultType") != "vector":
            raise QueryError(f"{query!r} returned a {data.get('resultType')}, not a vector")
        return [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]

    async def range(self, query: str, start: float, end: float, step: float = 1.0) -> list[Series]:
        """Every series of a range query from ``start`` to ``end`` (Unix seconds)."""
        params = {"query": query, "start": start, "end": end, "step": step}
        data = await self._data("query_range", params)
        return [
            Series(r["metric"], [(float(t), float(v)) for t, v in r["values"]])
            for r in data["result"]
        ]

    async def _data(
        self, path: str, params: dict[str, Any], address: str | None = None
    ) -> dict[str, Any]:
        """The ``data`` of a successful answer of ``/api/v1/<path>``."""
        where = (address or self.address).rstrip("/")
        query = params["query"]
        try:
            resp = await self._client.get(f"{where}/api/v1/{path}", params=params)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"Prometheus at {where}: {exc!r}") from exc
        if resp.status_code >= 500:
            raise UnreachableError(f"Prometheus at {where} answered HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise QueryError(f"HTTP {resp.status_code}, not JSON: {resp.text[:200]}") from exc
        if body.get("status") != "success":
            kind, error = body.get("errorType", "error"), body.get("error", "")
            raise QueryError(f"{kind}: {error} in {query!r}")
        data: dict[str, Any] = body["data"]
        return data
