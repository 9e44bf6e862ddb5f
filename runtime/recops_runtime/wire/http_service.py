"""The JSON/HTTP adapter over the same data plane, and the metrics app.

Application routes (field names are the proto's JSON names)::

    POST /v1/recommend     {"userId", "history", "k", "excludeSeen", "excludeItems",
                            "requestId", "version"} -> {"items": [{"itemId", "score"}], ...}
    POST /v1/feedback      {"requestId", "userId", "itemId", "event", "timestamp", "value"}
    GET  /v1/model-info

The admin API is not served here but on its own listener
(:mod:`recops_runtime.wire.admin_http`): this app is what a Service exposes.

Health: ``GET /healthz`` (the process is up), ``GET /readyz`` (every version warmed up,
not shutting down). Errors are ``{"error": {"code": "INVALID_ARGUMENT", "message": ...}}``
with the HTTP status :func:`recops_runtime.api.errors.http_status` gives, and so are
unknown routes (404), wrong methods (405), bodies that are not ``application/json`` (415),
too large (413) or that stop arriving (408): see :mod:`recops_runtime.wire.http_json`. An
optional ``X-Request-Timeout-Ms`` header is the request's deadline.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from recops_runtime.api.errors import ServiceError, invalid
from recops_runtime.api.messages import FeedbackRequest, ModelInfo, RecommendRequest
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.scoring.batcher import monotonic_deadline
from recops_runtime.wire.http_json import DEFAULT_READ_TIMEOUT_S, json_app, read_object

STOPPING_KEY = web.AppKey("stopping", list)


def str_field(body: dict[str, Any], key: str, default: str = "") -> str:
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


def _model_info_json(info: ModelInfo) -> dict[str, Any]:
    """``GetModelInfoResponse`` in the proto's JSON names, as ``/v1/recommend`` answers;
    the server's engine folders stay on the admin API."""
    return {
        "versions": [
            {
                "version": v.version,
                "target": v.target,
                "modelVersion": v.model_version,
                "precision": v.precision,
                "numItems": v.num_items,
                "numUsers": v.num_users,
                "maxlen": v.maxlen,
                "weight": v.weight,
                "ready": v.ready,
            }
            for v in info.versions
        ],
        "sticky": info.sticky,
    }


def build_http_app(
    plane: DataPlane, *, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> web.Application:
    """The application and health routes: what the public HTTP port serves. The admin API
    is never among them (:mod:`recops_runtime.wire.admin_http`)."""
    app = json_app(read_timeout_s)
    app[STOPPING_KEY] = [False]

    async def recommend(request: web.Request) -> web.Response:
        try:
            body = await read_object(request)
            query = RecommendRequest(
                user_id=str_field(body, "userId"),
                history=_ids(body, "history"),
                k=_int(body, "k"),
                exclude_seen=_bool(body, "excludeSeen"),
                exclude_items=_ids(body, "excludeItems"),
                request_id=str_field(body, "requestId"),
                version=str_field(body, "version"),
            )
        except ServiceError as exc:
            plane.count_refused(exc.status)  # refused before the data plane saw it
            raise
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
        body = await read_object(request)
        event: Any = str_field(body, "event")
        query = FeedbackRequest(
            user_id=str_field(body, "userId"),
            item_id=str_field(body, "itemId"),
            event=event,
            request_id=str_field(body, "requestId"),
            timestamp=_float(body, "timestamp"),
            value=_float(body, "value"),
        )
        answer = await plane.feedback(query)
        return web.json_response({"recommended": answer.recommended, "version": answer.version})

    async def model_info(request: web.Request) -> web.Response:
        return web.json_response(_model_info_json(plane.model_info()))

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
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
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
