"""The admin API loads engines from the engines root only, and its refusals reveal nothing
of the server's disk: not whether a folder exists, not what a file holds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from recops_runtime.registry.version_registry import OUTSIDE_ROOTS
from recops_testkit.serve_helpers import admin_url

SECRET = "hunter2-do-not-echo"


async def test_engine_dirs_outside_the_root_get_one_answer(
    start_server: Callable[..., Any], engines_dir: Path, tmp_path: Path
) -> None:
    server = await start_server(engines_root=engines_dir)
    shutil.copytree(engines_dir / "v2", tmp_path / "copy")  # a valid engine, outside
    async with httpx.AsyncClient() as http:
        answers = []
        for folder in (
            tmp_path / "copy",
            tmp_path / "nowhere",
            Path("/etc"),
            engines_dir / ".." / tmp_path.name / "copy",
        ):
            reply = await http.post(
                admin_url(server, "/admin/v1/versions"),
                json={"version": "v3", "engineDir": str(folder)},
            )
            answers.append((reply.status_code, reply.json()["error"]["message"]))
        inside = await http.post(
            admin_url(server, "/admin/v1/versions"),
            json={"version": "v2", "engineDir": str(engines_dir / "v2")},
        )
    assert set(answers) == {(400, OUTSIDE_ROOTS)}
    assert inside.status_code == 201


async def test_a_manifest_error_does_not_echo_the_file(
    start_server: Callable[..., Any], engines_dir: Path, tmp_path: Path
) -> None:
    server = await start_server()
    folder = tmp_path / "not-an-engine"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"target": "x", "files": [SECRET]}))
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            admin_url(server, "/admin/v1/versions"),
            json={"version": "v3", "engineDir": str(folder)},
        )
    assert reply.status_code == 422
    assert SECRET not in reply.text and "files" in reply.text
