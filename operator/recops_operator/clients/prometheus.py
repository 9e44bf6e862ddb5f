"""Instant queries against Prometheus' HTTP API (``/api/v1/query``).

One client serves the rollout analysis and the retraining signals. What a query means is
theirs; this module only turns an answer into one number, or says why it could not:
Prometheus refusing a query, or answering with several series, is a ``QueryError``;
Prometheus not answering, or answering 5xx, is an ``UnreachableError`` (an outage).
"""

from __future__ import annotations

from typing import Self

import httpx


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
        where = (address or self.address).rstrip("/")
        try:
            params = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
            resp = await self._client.get(f"{where}/api/v1/query", params=params)
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
