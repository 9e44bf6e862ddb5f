"""What every HTTP answer of the service shares: the JSON error envelope, the middleware
that puts every refusal in it (the service's own errors and aiohttp's 404, 405 and 413),
and the one way a JSON body is read (its content type, a read deadline, bounded depth).

Errors are ``{"error": {"code": <gRPC status name>, "message": ...}}``, so a client reads
one shape whatever refused the request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from recops_runtime.api.errors import ServiceError, Status, http_status, invalid

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# How long a request body may take to arrive once its headers have: a client that stops
# sending mid-body would otherwise hold a connection and a handler for as long as TCP
# keeps the connection alive.
DEFAULT_READ_TIMEOUT_S = 5.0
READ_TIMEOUT_KEY = web.AppKey("read_timeout_s", float)
# aiohttp's own refusals, by HTTP status, as the gRPC status names the envelope carries
# (the codes grpc-gateway gives the same HTTP statuses).
_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
}
# Headers an aiohttp refusal carries that still apply to its JSON form (405's Allow).
_KEPT_HEADERS = ("Allow",)


def error_response(
    http: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=http, headers=headers
    )


def service_error_response(exc: ServiceError) -> web.Response:
    return error_response(http_status(exc.status), exc.status.value, exc.message)


class HTTPRefusalError(Exception):
    """A refusal with an HTTP status of its own, outside the service's statuses (415, 408)."""

    def __init__(self, http: int, message: str) -> None:
        super().__init__(message)
        self.http = http
        self.message = message


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        return service_error_response(exc)
    except HTTPRefusalError as exc:
        response = error_response(exc.http, _HTTP_CODES[exc.http], exc.message)
        if exc.http == 408:
            # The rest of the body is unread: the connection cannot carry another request.
            response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kept = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
        code = _HTTP_CODES.get(exc.status, Status.INTERNAL.value)
        return error_response(exc.status, code, exc.reason, kept)


def json_app(
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S, guards: Sequence[Middleware] = ()
) -> web.Application:
    """An application whose errors are JSON and whose bodies are read by :func:`read_json`;
    ``guards`` run after the error envelope and before every handler (the admin token)."""
    app = web.Application(middlewares=[json_errors, *guards], client_max_size=4 * 1024 * 1024)
    app[READ_TIMEOUT_KEY] = read_timeout_s
    return app


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_body(request: web.Request) -> bytes:
    """The raw body, refused with 408 when it stops arriving (the app's read timeout)."""
    try:
        async with asyncio.timeout(request.app[READ_TIMEOUT_KEY]):
            return await request.read()
    except TimeoutError:
        seconds = request.app[READ_TIMEOUT_KEY]
        raise HTTPRefusalError(408, f"body: not received within {seconds:g} s") from None


async def read_json(request: web.Request) -> Any:
    """The body as JSON: 415 unless it says it is JSON, 408 when it stops arriving, 400
    when it is not JSON or nested deeper than the parser's recursion limit."""
    if not _is_json(request.content_type):
        raise HTTPRefusalError(
            415,
            f"Content-Type: must be application/json, got {request.content_type!r}"
            if "Content-Type" in request.headers
            else "Content-Type: must be application/json, got none",
        )
    raw = await read_body(request)
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSON and UTF-8 errors alike
        raise invalid("body", f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise invalid("body", "JSON nested too deeply") from exc


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body
