"""Client of the runtime's admin API (``/admin/v1/...`` on its own admin port, 8081 on
loopback unless ``recops serve --admin-host`` says otherwise; off loopback it requires the
bearer token of ``--admin-token-file``).

The one-machine driver (``recops rollout``) builds one and moves traffic with it; the
operator never imports the runtime, so this is plain HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx

from recops_operator.api.rollout import Weights


class AdminError(Exception):
    """The runtime refused a call or could not be reached."""


class RuntimeAdmin:
    """One runtime's admin API; one connection pool, closed with ``aclose``."""

    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            rsp = await self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise AdminError(f"runtime admin at {self.base_url} unreachable: {exc!r}") from exc
        if rsp.status_code >= 400:
            raise AdminError(f"{method} {path} answered {rsp.status_code}: {rsp.text[:300]}")
        return rsp.json()

    async def traffic(self) -> dict[str, int]:
        body = await self._call("GET", "/admin/v1/traffic")
        return {str(k): int(v) for k, v in body["weights"].items()}

    async def versions(self) -> dict[str, dict[str, Any]]:
        body = await self._call("GET", "/admin/v1/versions")
        return {str(v["version"]): v for v in body["versions"]}

    async def version_ready(self, version: str) -> bool:
        try:
            info = (await self.versions()).get(version)
        except AdminError:
            return False
        return bool(info and info.get("ready"))

    async def load_version(self, version: str, engine_dir: str) -> None:
        await self._call(
            "POST", "/admin/v1/versions", {"version": version, "engineDir": engine_dir}
        )

    async def unload_version(self, version: str) -> None:
        await self._call("DELETE", f"/admin/v1/versions/{version}")

    async def set_weights(
        self, stable: str, candidate: str, weights: Weights, sticky: bool
    ) -> None:
        """Route ``weights`` to the two versions; any other loaded version gets none."""
        current = await self.traffic()
        split = dict.fromkeys(current, 0)
        split[stable] = weights.stable
        split[candidate] = weights.candidate
        await self._call("PUT", "/admin/v1/traffic", {"weights": split, "sticky": sticky})
