"""`recops serve --processes 2` as a real server on 127.0.0.1: one port, one admin API and
one metrics endpoint for every process, shared histories, and drains that lose nothing."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from recops_cli.quickstart.processes import ServingPorts
from recops_contracts.feedback import parse_record
from recops_runtime.stores.feedback_log import read_feedback_log
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.taken_in import paused, wait_until_sent, wait_until_taken_in

RECOPS = str(Path(sys.executable).with_name("recops"))
# Connections the tests open: the kernel hands each to one process, so with 16 the chance
# that one process gets none is 2 in 65,536.
CONNECTIONS = 16
HISTORY = [item_id(i) for i in range(1, 11)]


class Server:
    def __init__(self, engines: dict[str, Path], work: Path, *extra: str) -> None:
        ports = ServingPorts()
        self.grpc, self.http, self.metrics = ports.grpc, ports.http, ports.metrics
        self.admin = ports.admin
        command = [RECOPS, "serve", *ports.flags(), "--processes", "2", "--log-level", "WARNING"]
        for name, path in engines.items():
            command += ["--engine", f"{name}={path}"]
        self.log = work / "serve.log"
        self.process = subprocess.Popen(
            [*command, *extra], stdout=subprocess.PIPE, stderr=self.log.open("wb")
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("recops serve ready"):
            self.process.kill()
            raise RuntimeError(f"recops serve did not start: {line!r} {self.log.read_text()}")
        assert "processes=2" in line

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin}{path}"

    def clients(self) -> list[RecommenderClient]:
        return [
            RecommenderClient(self.target, timeout_s=30, own_connection=True)
            for _ in range(CONNECTIONS)
        ]


@pytest.fixture
def serve(engines_dir: Path, tmp_path: Path) -> Iterator[object]:
    started: list[Server] = []

    def start(*extra: str, engines: dict[str, str] | None = None) -> Server:
        folders = {k: engines_dir / v for k, v in (engines or {"v1": "v1"}).items()}
        started.append(Server(folders, tmp_path, *extra))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)  # the supervisor stops its workers
            try:
                server.process.wait(60)
            except subprocess.TimeoutExpired:
                server.process.kill()  # its workers get SIGTERM from the kernel
                server.process.wait(10)


async def _processes(http: httpx.AsyncClient, server: Server) -> dict[int, dict[str, str]]:
    """Per process: version -> model version it serves."""
    listed = (await http.get(server.admin_url("/admin/v1/processes"))).json()["processes"]
    return {p["process"]: {v["version"]: v["model_version"] for v in p["versions"]} for p in listed}


async def test_weights_and_hot_swaps_under_load_fail_no_request(
    serve, engines_dir: Path, tmp_path: Path
) -> None:
    server = serve(engines={"v1": "v1", "v2": "v2"})
    clients = server.clients()
    codes: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    async def load(client: RecommenderClient, n: int) -> None:
        # Bounded in count and time: at most 400 requests per connection.
        for i in range(400):
            if stop.is_set():
                return
            try:
                await client.recommend(user_id((n * 400 + i) % 300 + 1), history=HISTORY)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1

    broken = tmp_path / "broken"
    shutil.copytree(engines_dir / "v2", broken)
    (broken / "id_maps.json").write_text("{}")
    tasks = [asyncio.ensure_future(load(c, n)) for n, c in enumerate(clients)]
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            while sum(codes.values()) < 50:  # the load is on
                await asyncio.sleep(0.01)
            for weights in ({"v1": 30, "v2": 70}, {"v1": 0, "v2": 100}, {"v1": 100, "v2": 0}):
                put = await http.put(
                    server.admin_url("/admin/v1/traffic"), json={"weights": weights}
                )
                assert put.status_code == 200, put.text
            swap = {"version": "v1", "engineDir": str(engines_dir / "v2")}
            added = await http.post(server.admin_url("/admin/v1/versions"), json=swap)
            assert added.status_code == 201, added.text
            assert await _processes(http, server) == {
                0: {"v1": "2", "v2": "2"},
                1: {"v1": "2", "v2": "2"},
            }
            # An engine that fails its checks is refused in every process; all keep serving.
            refused = await http.post(
                server.admin_url("/admin/v1/versions"),
                json={"version": "v1", "engineDir": str(broken)},
            )
            assert refused.status_code == 422
            assert "id_maps.json" in refused.json()["error"]["message"]
            assert (await _processes(http, server))[1] == {"v1": "2", "v2": "2"}
            back = {"version": "v1", "engineDir": str(engines_dir / "v1")}
            assert (
                await http.post(server.admin_url("/admin/v1/versions"), json=back)
            ).status_code == 201
            assert (await _processes(http, server))[0] == {"v1": "1", "v2": "2"}
            assert (await http.get(server.admin_url("/admin/v1/traffic"))).json()["weights"] == {
                "v1": 100,
                "v2": 0,
            }
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for client in clients:
            await client.close()
    assert set(codes) == {"OK"}, codes
    assert server.process.send_signal(signal.SIGTERM) is None
    assert await asyncio.to_thread(server.process.wait, 60) == 0


async def test_sigterm_answers_every_accepted_request_in_every_process(
    serve, tmp_path: Path
) -> None:
    log_dir = tmp_path / "feedback"
    # One engine worker per process scoring one request at a time: at most one request per
    # process is inside an engine (counted neither queued nor answered). A queue that holds
    # the whole burst: none is shed before the drain.
    server = serve(
        *("--max-batch-size", "1", "--engine-workers", "1", "--max-queue", "2000"),
        *("--feedback-log", str(log_dir)),
    )
    outcomes: dict[str, str] = {}
    clients = server.clients()

    async def one(client: RecommenderClient, n: int) -> None:
        request_id = f"r{n}"
        try:
            await client.recommend(user_id(n % 300 + 1), history=HISTORY, request_id=request_id)
            outcomes[request_id] = "OK"
        except grpc.aio.AioRpcError as exc:
            outcomes[request_id] = exc.code().name

    for client in clients:
        await client.wait_ready()
    # The processes outpace the client, so they are paused while the burst is sent: on
    # resuming they take in the whole burst at once, and a backlog waits for the engines.
    with paused(server.process.pid) as pids:
        calls = [asyncio.ensure_future(one(clients[n % CONNECTIONS], n)) for n in range(600)]
        await wait_until_sent(server.grpc)
    # The supervisor serves no engine: at most one request per worker is inside its engine.
    serving = max(len(pids) - 1, 1)
    # SIGTERM only once the processes hold every request, so any that is not answered OK
    # was dropped by a drain (through the supervisor and the workers' signal handlers).
    await wait_until_taken_in(
        server.metrics, len(calls), in_engine=serving, settled=lambda: len(outcomes)
    )
    server.process.send_signal(signal.SIGTERM)
    backlog = len(calls) - len(outcomes)
    await asyncio.gather(*calls)
    for client in clients:
        await client.close()
    assert await asyncio.to_thread(server.process.wait, 90) == 0
    assert backlog >= 10, "the drain had no backlog to answer"
    codes = collections.Counter(outcomes.values())
    assert codes == {"OK": len(calls)}, codes
    records = [parse_record(json.dumps(r)) for r in read_feedback_log(log_dir)]
    served = {r["request_id"] for r in records if r["kind"] == "recommendation"}
    answered = {rid for rid, code in outcomes.items() if code == "OK"}
    assert served == answered  # nothing served went unanswered, nothing answered unlogged
    # Each process wrote its own folder, and the kernel spread the connections over both.
    per_process = {
        folder.name: list(read_feedback_log(folder)) for folder in sorted(log_dir.iterdir())
    }
    assert sorted(per_process) == ["process-0", "process-1"]
    assert all(per_process.values())


async def test_processes_share_histories_clicks_and_metrics_without_redis(serve) -> None:
    server = serve()
    clients = server.clients()
    try:
        user = user_id(7)
        for item in HISTORY:  # watches arrive on one connection (one process) ...
            await clients[0].feedback(user, item, "watch")
        answers = [await c.recommend(user, k=5) for c in clients]  # ... read on all
        assert all(a.fallback_reason == "" and a.items for a in answers)
        # A click joins the request it answers, whichever process receives it.
        for answer, clicker in zip(answers, reversed(clients), strict=True):
            joined = await clicker.feedback(
                user, answer.items[0].item_id, "click", request_id=answer.request_id
            )
            assert joined.recommended and joined.version == "v1"
    finally:
        for client in clients:
            await client.close()
    async with httpx.AsyncClient() as http:
        # The JSON adapter on the supervisor's port answers from the processes, errors too.
        body = {"userId": user_id(7), "history": HISTORY, "k": 3}
        for _ in range(2):
            answer = await http.post(server.url("/v1/recommend"), json=body)
            assert answer.status_code == 200 and len(answer.json()["items"]) == 3
        bad = await http.post(server.url("/v1/recommend"), json={"k": "three"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
        text = (await http.get(f"http://127.0.0.1:{server.metrics}/metrics")).text
    hits = [line for line in text.splitlines() if line.startswith("recops_online_hits_total{")]
    assert hits == ['recops_online_hits_total{version="v1"} 16.0']
    recommendations = [
        line for line in text.splitlines() if line.startswith("recops_recommendations_total{")
    ]
    assert recommendations == [
        'recops_recommendations_total{target="cpu-onnxruntime",version="v1"} 18.0'
    ]


async def test_workers_stop_when_the_supervisor_is_killed(serve) -> None:
    import time

    server = serve()
    async with httpx.AsyncClient() as http:
        listed = (await http.get(server.admin_url("/admin/v1/processes"))).json()["processes"]
    pids = [p["pid"] for p in listed]
    assert len(pids) == 2
    server.process.kill()  # no chance to stop them itself
    server.process.wait(10)
    deadline = time.monotonic() + 60
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        await asyncio.sleep(0.1)
    assert not alive  # nothing keeps serving the shared port on its own


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A worker that exited but was not yet reaped by init shows as a zombie.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


async def test_a_process_that_dies_stops_the_whole_server(serve) -> None:
    import time

    server = serve()
    async with httpx.AsyncClient() as http:
        listed = (await http.get(server.admin_url("/admin/v1/processes"))).json()["processes"]
    pids = [p["pid"] for p in listed]
    os.kill(pids[1], signal.SIGKILL)
    # Status 1: Kubernetes restarts the pod rather than let it serve short-handed.
    assert await asyncio.to_thread(server.process.wait, 90) == 1
    assert f"process 1 (pid {pids[1]}) killed by SIGKILL" in server.log.read_text()
    deadline = time.monotonic() + 30
    while _running(pids[0]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not _running(pids[0])
