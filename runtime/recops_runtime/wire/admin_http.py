"""The admin API: the traffic split and the loaded versions (what rollouts drive).

Routes::

    GET/PUT /admin/v1/traffic          {"weights": {"v1": 90, "v2": 10}, "sticky": false}
    GET     /admin/v1/versions
    POST    /admin/v1/versions         {"version": "v2", "engineDir": "..."}  (422: refused)
    DELETE  /admin/v1/versions/{v}

They are never served on the public HTTP port. A server listens for them on its own
address (``--admin-host``, loopback by default, ``--admin-port``), where a bearer token
(:mod:`recops_runtime.wire.admin_auth`) is required whenever one is configured, and always
off loopback. A worker process of a multi-process server serves them on its private
loopback port instead, for its supervisor, with the two-phase version load the
supervisor's fan-out drives (``internal``: :mod:`recops_runtime.fleet.fanout`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from recops_runtime.api.errors import invalid
from recops_runtime.registry.version_registry import VersionRegistry
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.wire.admin_auth import AdminToken, bearer_auth
from recops_runtime.wire.http_json import DEFAULT_READ_TIMEOUT_S, json_app, read_object
from recops_runtime.wire.http_service import str_field

INTERNAL_PREFIX = "/internal/v1"
TRAFFIC = "/admin/v1/traffic"
VERSIONS = "/admin/v1/versions"


def add_admin_routes(
    app: web.Application,
    plane: DataPlane,
    registry: VersionRegistry,
    on_versions_changed: Callable[[], Awaitable[None]],
    *,
    internal: bool = False,
) -> None:
    """The admin routes on ``app``; ``internal`` adds the two-phase version load, only
    ever on a worker process's private loopback port."""

    async def get_traffic(request: web.Request) -> web.Response:
        return web.json_response(registry.traffic())

    async def put_traffic(request: web.Request) -> web.Response:
        body = await read_object(request)
        weights = body.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise invalid("weights", 'must be an object like {"v1": 90, "v2": 10}')
        sticky = body.get("sticky")
        if sticky is not None and not isinstance(sticky, bool):
            raise invalid("sticky", "must be true or false")
        registry.set_traffic(weights, sticky)
        return web.json_response(registry.traffic())

    async def list_versions(request: web.Request) -> web.Response:
        info = plane.model_info()
        return web.json_response({"versions": [asdict(v) for v in info.versions]})

    async def add_version(request: web.Request) -> web.Response:
        body = await read_object(request)
        name = str_field(body, "version")
        engine_dir = str_field(body, "engineDir")
        if not engine_dir:
            raise invalid("engineDir", "required: the engine folder to load")
        await registry.load_version(name, Path(engine_dir))
        await on_versions_changed()
        info = next(v for v in plane.model_info().versions if v.version == name)
        return web.json_response(asdict(info), status=201)

    async def stage_version(request: web.Request) -> web.Response:
        body = await read_object(request)
        name = str_field(body, "version")
        engine_dir = str_field(body, "engineDir")
        if not engine_dir:
            raise invalid("engineDir", "required: the engine folder to load")
        await registry.stage_version(name, Path(engine_dir))
        return web.json_response({"staged": name}, status=202)

    async def commit_version(request: web.Request) -> web.Response:
        name = request.match_info["version"]
        await registry.commit_version(name)
        await on_versions_changed()
        info = next(v for v in plane.model_info().versions if v.version == name)
        return web.json_response(asdict(info), status=201)

    async def discard_staged(request: web.Request) -> web.Response:
        discarded = await registry.discard_staged(request.match_info["version"])
        return web.json_response({"discarded": discarded})

    async def delete_version(request: web.Request) -> web.Response:
        await registry.unload_version(request.match_info["version"])
        await on_versions_changed()
        return web.json_response({"deleted": request.match_info["version"]})

    app.add_routes(
        [
            web.get(TRAFFIC, get_traffic),
            web.put(TRAFFIC, put_traffic),
            web.get(VERSIONS, list_versions),
            web.post(VERSIONS, add_version),
            web.delete(VERSIONS + "/{version}", delete_version),
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


def admin_json_app(
    token: AdminToken | None, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> web.Application:
    """An empty admin application: JSON errors, and the token checked before routing."""
    return json_app(read_timeout_s, [bearer_auth(token)] if token is not None else [])


def build_admin_app(
    plane: DataPlane,
    registry: VersionRegistry,
    on_versions_changed: Callable[[], Awaitable[None]],
    *,
    token: AdminToken | None = None,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
) -> web.Application:
    """A single server's admin listener."""
    app = admin_json_app(token, read_timeout_s)
    add_admin_routes(app, plane, registry, on_versions_changed)
    return app
