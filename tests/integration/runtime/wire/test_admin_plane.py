"""Issue 27, finding 1: the admin API is off the public port, and off loopback it needs
a bearer token.

Before, ``POST /admin/v1/versions``, ``PUT /admin/v1/traffic`` and ``DELETE
/admin/v1/versions/v1`` answered 201, 200 and 200 on the public JSON port, without
credentials, to anyone who could reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from recops_runtime.serve_settings import ServeSettings, is_loopback
from recops_testkit.serve_helpers import admin_url, http_url

TOKEN = "s3cret-admin-token"
SPLIT = {"weights": {"v1": 0, "v2": 100}}


def _admin_calls(engines_dir: Path) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The three calls the review reproduced, in an order that succeeds once authorized."""
    return [
        ("POST", "/admin/v1/versions", {"version": "v2", "engineDir": str(engines_dir / "v2")}),
        ("PUT", "/admin/v1/traffic", SPLIT),
        ("DELETE", "/admin/v1/versions/v1", None),
    ]


async def test_the_public_port_serves_no_admin_route(
    start_server: Callable[..., Any], engines_dir: Path
) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        for method, path, body in _admin_calls(engines_dir):
            reply = await http.request(method, http_url(server, path), json=body)
            assert reply.status_code == 404, (method, path, reply.text)
        for path in ("/admin/v1/traffic", "/admin/v1/versions"):
            assert (await http.get(http_url(server, path))).status_code == 404
        # Nothing changed: v1 still takes all the traffic, v2 was never loaded.
        traffic = (await http.get(admin_url(server, "/admin/v1/traffic"))).json()
    assert traffic["weights"] == {"v1": 100}


async def test_loopback_admin_works_without_a_token(
    start_server: Callable[..., Any], engines_dir: Path
) -> None:
    server = await start_server()
    assert server.settings.admin_host == "127.0.0.1"
    async with httpx.AsyncClient() as http:
        statuses = [
            (await http.request(m, admin_url(server, p), json=b)).status_code
            for m, p, b in _admin_calls(engines_dir)
        ]
    assert statuses == [201, 200, 200]


async def test_a_token_protected_admin_port_refuses_without_the_token(
    start_server: Callable[..., Any], engines_dir: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # a Secret's trailing newline is not part of it
    server = await start_server(admin_token_file=token_file)
    wrong = {"Authorization": "Bearer not-the-token"}
    async with httpx.AsyncClient() as http:
        for method, path, body in _admin_calls(engines_dir):
            for headers in ({}, wrong, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
                url = admin_url(server, path)
                reply = await http.request(method, url, json=body, headers=headers)
                assert reply.status_code == 401, (method, path, headers, reply.text)
                assert reply.json()["error"]["code"] == "UNAUTHENTICATED"
                assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        # Unknown routes are 401 too: nothing about the API shows before the token.
        assert (await http.get(admin_url(server, "/admin/v1/nothing"))).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        statuses = [
            (await http.request(m, admin_url(server, p), json=b, headers=right)).status_code
            for m, p, b in _admin_calls(engines_dir)
        ]
        assert statuses == [201, 200, 200]
        # A rotated Secret takes effect without a restart.
        token_file.write_text("rotated-token")
        old = await http.get(admin_url(server, "/admin/v1/traffic"), headers=right)
        new = await http.get(
            admin_url(server, "/admin/v1/traffic"),
            headers={"Authorization": "Bearer rotated-token"},
        )
    assert (old.status_code, new.status_code) == (401, 200)
    assert new.json()["weights"] == {"v2": 100}


async def test_an_admin_port_off_loopback_listens_with_its_token(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    server = await start_server(admin_host="0.0.0.0", admin_token_file=token_file)
    async with httpx.AsyncClient() as http:
        refused = await http.get(admin_url(server, "/admin/v1/traffic"))
        allowed = await http.get(
            admin_url(server, "/admin/v1/traffic"), headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert (refused.status_code, allowed.status_code) == (401, 200)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "admin.example", "[::]"])
def test_a_non_loopback_admin_host_without_a_token_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="admin_token_file"):
        ServeSettings(engines={"v1": tmp_path}, admin_host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert is_loopback(host)


def test_serve_refuses_to_start_with_an_exposed_admin_and_no_token(tmp_path: Path) -> None:
    from recops_cli.main import app

    done = CliRunner().invoke(
        app, ["serve", "--engine", f"v1={tmp_path}", "--admin-host", "0.0.0.0"]
    )
    assert done.exit_code == 2
    assert "admin-token-file" in done.output


async def test_an_empty_or_missing_token_file_is_refused_at_start(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    from recops_runtime.api.errors import ServiceError

    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (empty, tmp_path / "missing"):
        with pytest.raises(ServiceError, match="admin-token-file"):
            await start_server(admin_token_file=path)
