"""An in-process Kubernetes API for tests and benchmarks, built on kmock.

kmock stores objects as given; a real API server also stamps ``uid``,
``resourceVersion``, ``creationTimestamp`` and ``generation``, bumps ``resourceVersion``
on every write, refuses a JSON patch whose ``test`` fails with 422 (Kopf's finalizer
patches rely on it), names list kinds and answers kubectl's Table requests with the CRDs'
printer columns. This subclass adds exactly that. Needs ``kmock`` and ``jsonpatch`` (dev
extra); it is test harness, not part of the operator package.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml
from kmock._internal import enums, rendering

from recops_operator.crdgen import CRDS, PrinterColumn
from recops_operator.kube import resources as res_

# Everything the operator and its tests touch (Kopf needs v1/namespaces to start watching).
DECLARED: tuple[res_.Resource, ...] = (
    res_.NAMESPACES,
    res_.EVENTS,
    res_.CONFIGMAPS,
    res_.PODS,
    res_.SERVICES,
    res_.JOBS,
    res_.DEPLOYMENTS,
    res_.HPAS,
    res_.RECMODELS,
    res_.TRAININGRUNS,
    res_.ROLLOUTS,
    res_.RAYJOBS,
    res_.SERVICEMONITORS,
    res_.GRPCROUTES,
)
KEEP_REQUESTS = 32
_COLUMNS = {(c.plural): c.columns for c in CRDS}
_FILTER = re.compile(
    r'^(?P<list>[.\w]+)\[\?\(@\.(?P<key>\w+)=="(?P<value>[^"]*)"\)\]\.(?P<field>\w+)$'
)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.strip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def json_path(obj: dict[str, Any], path: str) -> Any:
    """The two JSONPath forms printer columns use: ``.a.b`` and ``.list[?(@.k=="v")].f``."""
    m = _FILTER.match(path)
    if not m:
        return _dig(obj, path)
    for item in _dig(obj, m["list"]) or []:
        if isinstance(item, dict) and str(item.get(m["key"])) == m["value"]:
            return item.get(m["field"])
    return None


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int(
        (
            datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        ).total_seconds()
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(columns: Iterable[PrinterColumn], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table, as the API server renders custom resources for kubectl."""
    cols = list(columns)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": "Name",
                "priority": 0,
            },
            *(
                {
                    "name": c.name,
                    "type": c.type,
                    "format": "",
                    "description": c.description,
                    "priority": c.priority,
                }
                for c in cols
            ),
        ],
        "rows": [
            {
                "cells": [
                    o["metadata"]["name"],
                    *(
                        _age(json_path(o, c.json_path))
                        if c.type == "date"
                        else json_path(o, c.json_path)
                        for c in cols
                    ),
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                },
            }
            for o in objects
        ],
    }


class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the bookkeeping of a real API server."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._versions = itertools.count(1)
        for res in DECLARED:
            key = f"{res.group}/{res.version}/{res.plural}" if res.group else f"v1/{res.plural}"
            self.resources[key] = kmock.ResourceInfo(
                kind=res.kind,
                namespaced=res.namespaced,
                singular=res.kind.lower(),
                verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
                shortnames={s for c in CRDS if c.plural == res.plural for s in c.short_names},
            )

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        """A kubeconfig that points kubectl at this server (which takes any token)."""
        context = {"cluster": "emulated", "user": "emulated", "namespace": namespace}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": str(self.url)}}],
            "users": [{"name": "emulated", "user": {"token": "unused"}}],
            "contexts": [{"name": "emulated", "context": context}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _next_version(self) -> str:
        return str(next(self._versions))

    def _lookup(self, request: rendering.Request) -> Any:
        # kmock scans every stored object per request; a direct key lookup keeps a fetch O(1)
        # when thousands of objects (events above all) pile up in a scale test.
        key: Any = (request.resource, request.namespace, request.name)
        return self.objects._objects.get(key)

    def _current(self, request: rendering.Request) -> dict[str, Any] | None:
        obj = self._lookup(request)
        return None if obj is None or obj.deleted else dict(obj.raw)

    async def _handle(self, request: rendering.Request) -> Any:
        # kmock keeps every request for assertions and matches each new one against that whole
        # log, which grows quadratically with traffic; an operator under test makes thousands
        # of requests, so only the newest are kept (the current one is the last appended).
        del self._requests[:-KEEP_REQUESTS]
        for payload in self._payloads:
            del payload._requests[:-KEEP_REQUESTS]
        if request.resource is not None:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
                meta.update(
                    uid=str(uuid.uuid4()),
                    resourceVersion=self._next_version(),
                    creationTimestamp=_now(),
                    generation=1,
                )
                if request.namespace and not meta.get("namespace"):
                    meta["namespace"] = request.namespace
            elif request.action == enums.action.UPDATE and request.name is not None:
                self._stamp_patch(request)
        try:
            return await super()._handle(request)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
            # What a real API server answers when a JSON patch's `test` fails.
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from None

    def _stamp_patch(self, request: rendering.Request) -> None:
        current = self._current(request) or {}
        generation = int((current.get("metadata") or {}).get("generation") or 1)
        version = self._next_version()
        if isinstance(request.data, list):
            touches_spec = any(str(op.get("path", "")).startswith("/spec") for op in request.data)
            rv_op = {"op": "add", "path": "/metadata/resourceVersion", "value": version}
            request.data.append(rv_op)
            if touches_spec and request.subresource is None:
                request.data.append(
                    {"op": "add", "path": "/metadata/generation", "value": generation + 1}
                )
        elif isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {}) or {}
            request.data["metadata"] = meta
            meta["resourceVersion"] = version
            if (
                "spec" in request.data
                and request.subresource is None
                and request.data["spec"] != current.get("spec")
            ):
                meta["generation"] = generation + 1

    async def _serve_list(self, request: rendering.Request) -> Any:
        result: dict[str, Any] = await super()._serve_list(request)  # type: ignore[assignment]
        res = request.resource
        info = self.resources.get(res) if res is not None else None
        if _wants_table(request) and res is not None and res.plural in _COLUMNS:
            return table(_COLUMNS[res.plural], list(result["items"]))
        kind = getattr(info, "kind", None) or "List"
        group_version = f"{res.group}/{res.version}" if res is not None and res.group else "v1"
        return {"apiVersion": group_version, "kind": f"{kind}List", **result}

    async def _serve_version(self, request: rendering.Request) -> Any:
        result: dict[str, Any] = await super()._serve_version(request)  # type: ignore[assignment]
        # The core group's version is "v1", not "/v1" (kubectl finds no core kinds otherwise).
        result["groupVersion"] = str(result.get("groupVersion", "")).lstrip("/")
        return result

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        obj = self._lookup(request)
        if obj is None or obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        result: dict[str, Any] = obj.raw
        res = request.resource
        if _wants_table(request) and res is not None and res.plural in _COLUMNS:
            return table(_COLUMNS[res.plural], [result])
        return result


def _wants_table(request: rendering.Request) -> bool:
    return "as=Table" in (request.headers.get("Accept") or "")
