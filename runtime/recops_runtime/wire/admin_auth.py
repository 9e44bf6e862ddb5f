"""The admin API's bearer token: read from a file (a mounted Secret), checked in constant
time on every admin call.

The admin API moves traffic and loads engines, so off loopback it answers only a caller
that presents ``Authorization: Bearer <token>``; anything else is 401 before routing, so
an unauthenticated caller learns nothing of which routes exist. The file is read again
when it changes (Kubernetes updates a mounted Secret in place), so a rotated token takes
effect without a restart.
"""

from __future__ import annotations

import contextlib
import hmac
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.wire.http_json import Handler, error_response

BEARER = "Bearer "


class AdminToken:
    """The token in ``path``; refused at start-up when unreadable or empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._token = b""
        self._reload()

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            token = self.path.read_bytes().strip()
        except OSError as exc:
            raise ServiceError(
                Status.FAILED_PRECONDITION, f"admin-token-file: cannot read {self.path}: {exc}"
            ) from exc
        if not token:
            raise ServiceError(
                Status.FAILED_PRECONDITION, f"admin-token-file: {self.path} is empty"
            )
        self._token, self._stamp = token, stamp

    def matches(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (constant time)."""
        if authorization is None or not authorization.startswith(BEARER):
            return False
        with contextlib.suppress(ServiceError):  # a Secret mid-rewrite: keep the last token
            self._reload()
        presented = authorization[len(BEARER) :].strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(presented, self._token)


def bearer_auth(token: AdminToken) -> Middleware:
    """Middleware answering 401 (in the JSON envelope) unless the request carries ``token``."""

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token.matches(request.headers.get("Authorization")):
            return error_response(
                401,
                "UNAUTHENTICATED",
                "admin API: a valid bearer token is required",
                {"WWW-Authenticate": 'Bearer realm="recops-admin"'},
            )
        return await handler(request)

    return require_token
