"""Issue 27, finding 1, for `recops serve --processes 2`: the supervisor's public port
passes JSON on but serves no admin route; its admin listener fans out with the token."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from recops_cli.quickstart.processes import ServingPorts

RECOPS = str(Path(sys.executable).with_name("recops"))
TOKEN = "fleet-admin-token"


def test_the_supervisor_keeps_admin_off_the_public_port(engines_dir: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    ports = ServingPorts()
    command = [RECOPS, "serve", *ports.flags(), "--processes", "2", "--log-level", "WARNING"]
    command += ["--engine", f"v1={engines_dir / 'v1'}", "--admin-token-file", str(token_file)]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("wb"))
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("recops serve ready"), (line, log.read_text())
        assert f"admin={ports.admin}" in line and "processes=2" in line
        public = f"http://127.0.0.1:{ports.http}"
        admin = f"http://127.0.0.1:{ports.admin}"
        swap = {"version": "v2", "engineDir": str(engines_dir / "v2")}
        calls = [
            ("POST", "/admin/v1/versions", swap),
            ("PUT", "/admin/v1/traffic", {"weights": {"v1": 0, "v2": 100}}),
            ("DELETE", "/admin/v1/versions/v1", None),
        ]
        with httpx.Client(timeout=120) as http:
            for method, path, body in calls:
                assert http.request(method, public + path, json=body).status_code == 404
                assert http.request(method, admin + path, json=body).status_code == 401
            assert http.get(public + "/admin/v1/processes").status_code == 404
            assert http.get(public + "/readyz").status_code == 200
            right = {"Authorization": f"Bearer {TOKEN}"}
            statuses = [
                http.request(m, admin + p, json=b, headers=right).status_code for m, p, b in calls
            ]
            assert statuses == [201, 200, 200]
            listed = http.get(admin + "/admin/v1/processes", headers=right).json()["processes"]
        assert [sorted(v["version"] for v in p["versions"]) for p in listed] == [["v2"], ["v2"]]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
