"""An asyncio client for exactly the Kubernetes calls the operator makes.

It is created once per operator process and handed to the reconcilers through the
operator context (never a module global), so tests point it at an emulated API server.
It addresses objects only through the table in ``resources.py``; every call records
its (group, resource, verb), which the RBAC test compares with the rules in ``rbac.py``.
"""

from __future__ import annotations

import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import aiohttp

from recops_operator.resources import Resource, resource_of

Obj = dict[str, Any]


class KubeError(Exception):
    """An API error with the server's status code and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFoundError(KubeError):
    pass


class ConflictError(KubeError):
    pass


@dataclass(frozen=True)
class KubeConnection:
    """Where the API server is and how to authenticate (mirrors kopf.ConnectionInfo)."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    ca_data: bytes | None = None
    certificate_path: str | None = None
    certificate_data: bytes | None = None
    private_key_path: str | None = None
    private_key_data: bytes | None = None
    insecure: bool = False

    def ssl_context(self, scratch: Path) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context(
            cafile=self.ca_path,
            cadata=self.ca_data.decode() if self.ca_data else None,
        )
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        cert, key = self.certificate_path, self.private_key_path
        # ssl wants files: client certificates given inline are written to a private folder.
        if self.certificate_data:
            cert = str(scratch / "client.crt")
            Path(cert).write_bytes(self.certificate_data)
        if self.private_key_data:
            key = str(scratch / "client.key")
            Path(key).write_bytes(self.private_key_data)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx


@dataclass
class KubeClient:
    """JSON over HTTP against the API server; one aiohttp session per operator."""

    connection: KubeConnection
    calls: set[tuple[str, str, str]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    _scratch: tempfile.TemporaryDirectory[str] | None = None
    discovery_ttl: float = 300.0
    _discovered: dict[str, tuple[bool, float]] = field(default_factory=dict)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is not None:
            return
        # Only inline client certificates need files (kubeconfigs with embedded data); a pod
        # with a read-only root filesystem and a service account token never writes any.
        c = self.connection
        if c.certificate_data or c.private_key_data:
            self._scratch = tempfile.TemporaryDirectory(prefix="recops-kube-")
        ssl_ctx = c.ssl_context(Path(self._scratch.name) if self._scratch else Path())
        headers = {"Accept": "application/json", "User-Agent": "recops-operator"}
        if self.connection.token:
            headers["Authorization"] = f"Bearer {self.connection.token}"
        self._session = aiohttp.ClientSession(
            base_url=self.connection.server.rstrip("/") + "/",
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=32),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            raise RuntimeError("KubeClient is not open: use `async with KubeClient(...)`")
        headers = {"Content-Type": content_type} if json is not None else {}
        async with self._session.request(
            method, path.lstrip("/"), json=json, headers=headers, params=params
        ) as rsp:
            body = await rsp.json(content_type=None) if rsp.content_length != 0 else None
            if rsp.status < 400:
                return body
            body = body if isinstance(body, dict) else {}
            reason = str(body.get("reason") or rsp.reason or "")
            message = str(body.get("message") or "")
            if rsp.status == 404:
                raise NotFoundError(rsp.status, reason, message)
            if rsp.status == 409:
                raise ConflictError(rsp.status, reason, message)
            raise KubeError(rsp.status, reason, message)

    def _record(self, resource: Resource, verb: str, subresource: str | None = None) -> None:
        plural = f"{resource.plural}/{subresource}" if subresource else resource.plural
        self.calls.add((resource.group, plural, verb))

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        self._record(resource, "get")
        try:
            result: Obj = await self._request("GET", resource.path(namespace, name))
        except NotFoundError:
            return None
        return result

    async def list(
        self, resource: Resource, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        """Objects of a resource, filtered by labels (on the server, and again here)."""
        self._record(resource, "list")
        params = (
            {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        )
        result = await self._request("GET", resource.path(namespace), params=params)
        items: list[Obj] = list((result or {}).get("items") or [])
        if labels:
            items = [
                i
                for i in items
                if all(
                    ((i.get("metadata") or {}).get("labels") or {}).get(k) == v
                    for k, v in labels.items()
                )
            ]
        return items

    async def create(self, obj: Obj) -> Obj:
        """Create ``obj``; raises ConflictError when an object of that name exists."""
        resource = resource_of(obj)
        self._record(resource, "create")
        namespace = obj["metadata"].get("namespace")
        result: Obj = await self._request("POST", resource.path(namespace), json=obj)
        return result

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        """A JSON merge patch of the object (or of its ``status`` subresource)."""
        self._record(resource, "patch", subresource)
        path = resource.path(namespace, name)
        if subresource:
            path = f"{path}/{subresource}"
        result: Obj = await self._request(
            "PATCH", path, json=patch, content_type="application/merge-patch+json"
        )
        return result

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        """Delete the object (its dependents go with it); False when it was already gone."""
        self._record(resource, "delete")
        try:
            await self._request(
                "DELETE",
                resource.path(namespace, name),
                json={"propagationPolicy": "Background"},
            )
        except NotFoundError:
            return False
        return True

    async def serves(self, resource: Resource) -> bool:
        """Whether the API server serves ``resource`` (e.g. whether KubeRay is installed).

        Answers are cached for ``discovery_ttl`` seconds, so a CRD installed later is seen.
        """
        key = resource.api_version + "/" + resource.plural
        cached = self._discovered.get(key)
        if cached is None or time.monotonic() - cached[1] > self.discovery_ttl:
            path = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
            try:
                found = await self._request("GET", path)
            except KubeError:
                found = None
            names = {r.get("name") for r in (found or {}).get("resources") or []}
            cached = (resource.plural in names, time.monotonic())
            self._discovered[key] = cached
        return cached[0]

    def forget_discovery(self) -> None:
        """Look resources up again on the next ``serves`` (a CRD may have been installed)."""
        self._discovered.clear()
