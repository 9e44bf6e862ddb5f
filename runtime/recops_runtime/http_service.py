"""The JSON/HTTP adapter over the same data plane, and the admin API.

Application routes (field names are the proto's JSON names)::

    POST /v1/recommend     {"userId", "history", "k", "excludeSeen", "excludeItems",
                            "requestId", "version"} -> {"items": [{"itemId", "score"}], ...}
    POST /v1/feedback      {"requestId", "userId", "itemId", "event", "timestamp", "value"}
    GET  /v1/model-info

Admin routes (used by rollouts)::

    GET/PUT /admin/v1/traffic          {"weights": {"v1": 90, "v2": 10}, "sticky": false}
    GET     /admin/v1/versions
    POST    /admin/v1/versions         {"version": "v2", "engineDir": "..."}  (422: refused)
    DELETE  /admin/v1/versions/{v}

Health: ``GET /healthz`` (the process is up), ``GET /readyz`` (every version warmed up,
not shutting down). Errors are ``{"error": {"code": "INVALID_ARGUMENT", "message": ...}}``
with the HTTP status :func:`recops_runtime.errors.http_status` gives. An optional
``X-Request-Timeout-Ms`` header is the request's deadline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from recops_runtime.batcher import monotonic_deadline
from recops_runtime.dataplane import DataPlane
from recops_runtime.errors import ServiceError, Status, http_status, invalid
from recops_runtime.messages import FeedbackRequest, RecommendRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STOPPING_KEY = web.AppKey("stopping", list)
INTERNAL_PREFIX = "/internal/v1"


def _error(status: Status, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status.value, "message": message}}, status=http_status(status)
    )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        return _error(exc.status, exc.message)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except ValueError as exc:
        raise invalid("body", f"not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


def _str(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(key, "must be a string")
    return str(value)


def _ids(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise invalid(key, "must be a list of ids")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise invalid(f"{key}[{i}]", "ids are strings or integers")
    return [str(item) for item in value]


def _int(body: dict[str, Any], key: str, default: int = 0) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(key, "must be an integer")
    return value


def _float(body: dict[str, Any], key: str) -> float:
    value = body.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(key, "must be a number")
    try:
        return float(value)
    except OverflowError as exc:
        raise invalid(key, "out of range") from exc


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise invalid(key, "must be true or false")
    return value


def _timeout(request: web.Request) -> float | None:
    raw = request.headers.get("X-Request-Timeout-Ms")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw)) / 1000.0
    except ValueError as exc:
        raise invalid("X-Request-Timeout-Ms", "must be a number of milliseconds") from exc


def build_http_app(
    plane: DataPlane,
    on_versions_changed: Callable[[], Awaitable[None]],
    *,
    internal: bool = False,
) -> web.Application:
    """The application, admin and health routes; ``internal`` adds the two-phase version
    load a multi-process server's supervisor drives (:mod:`recops_runtime.fanout`), only
    on a worker process's private loopback port."""
    app = web.Application(middlewares=[_errors], client_max_size=4 * 1024 * 1024)
    app[STOPPING_KEY] = [False]

    async def recommend(request: web.Request) -> web.Response:
        body = await _body(request)
        query = RecommendRequest(
            user_id=_str(body, "userId"),
            history=_ids(body, "history"),
            k=_int(body, "k"),
            exclude_seen=_bool(body, "excludeSeen"),
            exclude_items=_ids(body, "excludeItems"),
            request_id=_str(body, "requestId"),
            version=_str(body, "version"),
        )
        answer = await plane.recommend(query, monotonic_deadline(_timeout(request)))
        return web.json_response(
            {
                "items": [{"itemId": i.item_id, "score": i.score} for i in answer.items],
                "requestId": answer.request_id,
                "version": answer.version,
                "target": answer.target,
                "modelVersion": answer.model_version,
                "fallbackReason": answer.fallback_reason,
            }
        )

    async def feedback(request: web.Request) -> web.Response:
        body = await _body(request)
        event: Any = _str(body, "event")
        query = FeedbackRequest(
            user_id=_str(body, "userId"),
            item_id=_str(body, "itemId"),
            event=event,
            request_id=_str(body, "requestId"),
            timestamp=_float(body, "timestamp"),
            value=_float(body, "value"),
        )
        answer = await plane.feedback(query)
        return web.json_response({"recommended": answer.recommended, "version": answer.version})

    async def model_info(request: web.Request) -> web.Response:
        info = plane.model_info()
        return web.json_response(
            {
                "versions": [asdict(v) for v in info.versions],
                "sticky": info.sticky,
            }
        )

    async def get_traffic(request: web.Request) -> web.Response:
        return web.json_response(plane.traffic())

    async def put_traffic(request: web.Request) -> web.Response:
        body = await _body(request)
        weights = body.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise invalid("weights", 'must be an object like {"v1": 90, "v2": 10}')
        sticky = body.get("sticky")
        if sticky is not None and not isinstance(sticky, bool):
            raise invalid("sticky", "must be true or false")
        plane.set_traffic(weights, sticky)
        return web.json_response(plane.traffic())

    async def list_versions(request: web.Request) -> web.Response:
        info = plane.model_info()
        return web.json_response({"versions": [asdict(v) for v in info.versions]})

    async def add_version(request: web.Request) -> web.Response:
        body = await _body(request)
        name = _str(body, "version")
        engine_dir = _str(body, "engineDir")
        if not engine_dir:
            raise invalid("engineDir", "required: the engine folder to load")
        await plane.load_version(name, Path(engine_dir))
        await on_versions_changed()
        info = next(v for v in plane.model_info().versions if v.version == name)
        return web.json_response(asdict(info), status=201)

    async def stage_version(request: web.Request) -> web.Response:
        body = await _body(request)
        name = _str(body, "version")
        engine_dir = _str(body, "engineDir")
        if not engine_dir:
            raise invalid("engineDir", "required: the engine folder to load")
        await plane.stage_version(name, Path(engine_dir))
        return web.json_response({"staged": name}, status=202)

    async def commit_version(request: web.Request) -> web.Response:
        name = request.match_info["version"]
        await plane.commit_version(name)
        await on_versions_changed()
        info = next(v for v in plane.model_info().versions if v.version == name)
        return web.json_response(asdict(info), status=201)

    async def discard_staged(request: web.Request) -> web.Response:
        discarded = await plane.discard_staged(request.match_info["version"])
        return web.json_response({"discarded": discarded})

    async def delete_version(request: web.Request) -> web.Response:
        await plane.unload_version(request.match_info["version"])
        await on_versions_changed()
        return web.json_response({"deleted": request.match_info["version"]})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ready = plane.ready and not app[STOPPING_KEY][0]
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    app.add_routes(
        [
            web.post("/v1/recommend", recommend),
            web.post("/v1/feedback", feedback),
            web.get("/v1/model-info", model_info),
            web.get("/admin/v1/traffic", get_traffic),
            web.put("/admin/v1/traffic", put_traffic),
            web.get("/admin/v1/versions", list_versions),
            web.post("/admin/v1/versions", add_version),
            web.delete("/admin/v1/versions/{version}", delete_version),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
        ]
    )
    if internal:
        app.add_routes(
            [
                web.post(f"{INTERNAL_PREFIX}/staged", stage_version),
                web.post(f"{INTERNAL_PREFIX}/staged/{{version}}/commit", commit_version),
                web.delete(f"{INTERNAL_PREFIX}/staged/{{version}}", discard_staged),
            ]
        )
    return app


def build_metrics_app(plane: DataPlane) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=plane.metrics.exposition(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app
