"""An in-process Kubernetes API for tests and benchmarks, built on kmock.

kmock stores objects as given; a real API server also stamps ``uid``,
``resourceVersion``, ``creationTimestamp`` and ``generation``, bumps ``resourceVersion``
on every write, refuses a JSON patch whose ``test`` fails with 422 (Kopf's finalizer
patches rely on it) and a merge patch naming a resourceVersion it no longer holds with
409, names list kinds and answers kubectl's Table requests with the CRDs' printer
columns. This subclass adds exactly that, the CRDs' categories in discovery and their
OpenAPI v3 documents (for ``kubectl explain`` and server-side field validation).

It admits our custom objects as a real server does (see :mod:`recops_testkit.admission`):
schema, defaults, pruning and CEL rules, refused with 422. ``admission=False`` stores them
as sent instead, for the tests of the operator's own validation: objects stored before a
CRD change tightened its schema still reach the operator. ``api.faults`` arms the faults
of :mod:`recops_testkit.faults`. Needs ``kmock`` and ``jsonpatch`` (dev extra); it is
test harness, not part of the operator package.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import dicts, enums, rendering

from recops_operator import resources as res_
from recops_operator.crdgen import CRDS, PrinterColumn
from recops_testkit import admission, openapi
from recops_testkit.faults import Faults, gone_event

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
    res_.NETWORKPOLICIES,
)
KEEP_REQUESTS = 32
_COLUMNS = {(c.plural): c.columns for c in CRDS}
_KINDS = admission.load_kinds()
_VERBS = {
    enums.action.CREATE: "create",
    enums.action.UPDATE: "patch",
    enums.action.FETCH: "get",
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
}
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


@attrs.define(kw_only=True, slots=False)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the bookkeeping of a real API server."""

    admission: bool = True
    faults: Faults = attrs.field(factory=Faults)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._version = 0
        for res in DECLARED:
            key = f"{res.group}/{res.version}/{res.plural}" if res.group else f"v1/{res.plural}"
            kind = _KINDS.get((res.group, res.plural))
            self.resources[key] = kmock.ResourceInfo(
                kind=res.kind,
                namespaced=res.namespaced,
                singular=res.kind.lower(),
                verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
                shortnames={s for c in CRDS if c.plural == res.plural for s in c.short_names},
                categories=set(kind.categories) if kind else set(),
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

    def stored(self, resource: res_.Resource, namespace: str) -> dict[str, dict[str, Any]]:
        """The live objects of ``resource`` in ``namespace`` by name, read in-process: a
        test's probe never meets the faults it armed for the operator."""
        found: dict[str, dict[str, Any]] = {}
        for (res, ns, name), obj in self.objects._objects.items():
            same = (res.group or "", res.plural) == (resource.group, resource.plural)
            if same and ns == namespace and not obj.deleted:
                found[name] = dict(obj.raw)
        return found

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _lookup(self, request: rendering.Request) -> Any:
        # kmock scans every stored object per request; a direct key lookup keeps a fetch O(1)
        # when thousands of objects (events above all) pile up in a scale test.
        key: Any = (request.resource, request.namespace, request.name)
        return self.objects._objects.get(key)

    def _current(self, request: rendering.Request) -> dict[str, Any] | None:
        obj = self._lookup(request)
        return None if obj is None or obj.deleted else dict(obj.raw)

    async def _handle(self, request: rendering.Request) -> Any:
        if request.url.path.startswith(openapi.ROOT):
            return _serve_openapi(request.url.path)
        # kmock keeps every request for assertions and matches each new one against that whole
        # log, which grows quadratically with traffic; an operator under test makes thousands
        # of requests, so only the newest are kept (the current one is the last appended).
        del self._requests[:-KEEP_REQUESTS]
        for payload in self._payloads:
            del payload._requests[:-KEEP_REQUESTS]
        warnings: list[str] = []
        fault = None
        if request.resource is not None:
            verb = _VERBS.get(request.action) if request.action is not None else None
            if verb is not None and verb != "watch":
                fault = self.faults.take(request.resource.plural, verb, request.subresource)
            if fault is not None and fault.drop is None:
                return fault.response()
            if fault is not None and fault.drop == "unapplied":
                return _hang_up(request)
            if self._stale(request):
                return await self._render_error(_conflict(request))
            try:
                warnings = self._admit(request)
            except kmock.KubernetesError as exc:
                return await self._render_error(exc)
            except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
                return await self._render_error(_invalid_patch(exc))
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
            response = await super()._handle(request)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
            raise _invalid_patch(exc) from None
        if fault is not None and fault.drop == "applied":
            return _hang_up(request)
        if warnings and isinstance(response, aiohttp.web.StreamResponse) and not response.prepared:
            for warning in warnings:  # as kube-apiserver sends them; kubectl prints each
                response.headers.add("Warning", f'299 - "{_escape(warning)}"')
        return response

    def _admit(self, request: rendering.Request) -> list[str]:
        """Admit a write of one of our kinds as a real server does (when ``admission``):
        the request then carries what the server stores; returns the warnings to send."""
        res = request.resource
        kind = _KINDS.get((str(res.group), str(res.plural))) if res is not None else None
        if not self.admission or kind is None or not isinstance(request.data, (dict, list)):
            return []
        field_validation = request.params.get("fieldValidation")
        if request.action == enums.action.CREATE and isinstance(request.data, dict):
            obj, warnings = admission.admit(
                kind, request.data, None, subresource=None, field_validation=field_validation
            )
            request.data.clear()
            request.data.update(obj)
            return warnings
        if request.action != enums.action.UPDATE or request.name is None:
            return []
        current = self._current(request)
        if current is None:
            return []  # kmock answers 404
        patched = dict(dicts.patch_dict(current, request.data))
        obj, warnings = admission.admit(
            kind,
            patched,
            current,
            subresource=request.subresource,
            field_validation=field_validation,
        )
        # kmock merges the request's data into the stored object: hand it the difference.
        object.__setattr__(request, "data", admission.merge_diff(current, obj))
        return warnings

    def _stale(self, request: rendering.Request) -> bool:
        """A merge patch that names a resourceVersion other than the stored one: a real
        server refuses it with 409 (optimistic concurrency)."""
        if request.action != enums.action.UPDATE or not isinstance(request.data, dict):
            return False
        wanted = (request.data.get("metadata") or {}).get("resourceVersion")
        current = self._current(request)
        if wanted is None or current is None:
            return False
        return bool(str(wanted) != str(current["metadata"].get("resourceVersion")))

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

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        plural = request.resource.plural if request.resource is not None else None
        async for item in super()._serve_watch(request):
            fault = self.faults.take(plural, "watch", None) if isinstance(item, dict) else None
            if fault is not None and fault.watch == "expire":
                yield gone_event()  # the event is lost: the client must list again
                return
            if fault is not None:
                _hang_up(request)  # dropped under the stream: no final chunk, no clean end
                return
            yield item

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


def _invalid_patch(exc: Exception) -> kmock.KubernetesError:
    # What a real API server answers when a JSON patch's `test` fails.
    return kmock.KubernetesError(status=422, reason="Invalid", message=str(exc))


def _hang_up(request: rendering.Request) -> aiohttp.web.Response:
    """Close the client's connection; the response returned is never sent."""
    transport = request._raw_request.transport if request._raw_request else None
    if transport is not None:
        transport.close()
    return aiohttp.web.Response(status=500)


def _conflict(request: rendering.Request) -> kmock.KubernetesError:
    # What a real API server answers a write based on a version it no longer holds.
    return kmock.KubernetesError(
        status=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on {request.resource} "{request.name}": the '
        "object has been modified; please apply your changes to the latest version and try "
        "again",
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _serve_openapi(path: str) -> aiohttp.web.Response:
    if path.rstrip("/") == openapi.ROOT:
        return aiohttp.web.json_response(openapi.root_document(_KINDS.values()))
    gv = path.removeprefix(openapi.ROOT + "/")
    kinds = [k for k in _KINDS.values() if openapi.group_version_path(k) == gv]
    if not kinds:
        return aiohttp.web.json_response({"kind": "Status", "code": 404}, status=404)
    return aiohttp.web.json_response(openapi.group_version_document(kinds))


def _wants_table(request: rendering.Request) -> bool:
    return "as=Table" in (request.headers.get("Accept") or "")
