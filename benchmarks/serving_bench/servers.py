"""The servers under the same load: `recops serve`, a gRPC echo server (the transport's
ceiling) and the Ray Serve peer."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recops_cli.quickstart.processes import ServingPorts, free_port
from serving_bench import CONCURRENCY
from serving_bench.load import load

ECHO_SERVER = Path(__file__).with_name("echo_server.py")


def run_service(
    engine_dir: Path,
    args: argparse.Namespace,
    work: Path,
    shape: dict[str, int],
    cache_users: int = 0,
) -> list[dict[str, Any]]:
    """`recops serve` of ``shape`` (processes, engine workers and threads per process).

    With ``cache_users`` its per-user top-k cache is on and only the highest concurrency
    runs; each row then says which share of its requests the cache answered.
    """
    ports = ServingPorts()
    command = [
        str(Path(sys.executable).with_name("recops")),
        "serve",
        "--engine",
        f"v1={engine_dir}",
        *ports.flags(),
        "--max-batch-size",
        str(args.max_batch_size),
        "--log-level",
        "WARNING",
    ]
    command += ["--processes", str(shape["processes"])]
    command += ["--engine-workers", str(shape["engine_workers"])]
    command += ["--engine-threads", str(shape["engine_threads"])]
    if cache_users:
        command += ["--topk-cache-users", str(cache_users)]
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if "ready" not in line:
            raise RuntimeError(f"recops serve did not start: {(work / 'serve.log').read_text()}")
        import psutil

        process = psutil.Process(server.pid)

        def serving() -> list[Any]:  # the supervisor and its worker processes
            return [process, *process.children(recursive=True)]

        target = f"127.0.0.1:{ports.grpc}"
        if cache_users:
            before = cache_lookups(ports.metrics)
            row = load(target, CONCURRENCY[-1], args, serving)
            hits, misses = (
                a - b for a, b in zip(cache_lookups(ports.metrics), before, strict=True)
            )
            return [row | shape | {"cache_hit_rate": hits / max(1.0, hits + misses)}]
        rows = [load(target, c, args, serving) for c in CONCURRENCY]
        rows.append(load(target, CONCURRENCY[-1], args, serving, feedback=True))
        return [row | shape for row in rows]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def cache_lookups(metrics_port: int) -> tuple[float, float]:
    """The server's top-k cache hits and misses so far."""
    import httpx

    from recops_contracts import metrics as m

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    counts = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        if line.startswith(m.total(m.TOPK_CACHE) + "{"):
            for result in counts:
                if f'result="{result}"' in line:
                    counts[result] += float(line.rsplit(" ", 1)[1])
    return counts["hit"], counts["miss"]


def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    """The transport's ceiling: a gRPC server that answers a fixed list, no engine, no
    data plane, on the same event loop, under the same load at the highest concurrency."""
    import psutil

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        if "ready" not in server.stdout.readline().decode():
            raise RuntimeError("the echo server did not start")
        process = psutil.Process(server.pid)
        return load(f"127.0.0.1:{port}", CONCURRENCY[-1], args, lambda: [process])
    finally:
        server.terminate()
        server.wait(30)


def run_ray_peer(engine_dir: Path, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions

    from recops_runtime.proto.recops.v1 import recommender_pb2 as pb

    grpc_port = free_port()
    max_batch, threads = args.max_batch_size, args.resolved_threads

    # One replica per engine worker of the service: Ray Serve scales by replicas.
    @serve.deployment(
        num_replicas=args.resolved_workers,
        max_ongoing_requests=256,
        ray_actor_options={"num_cpus": 0},
    )
    class RayRecommender:
        def __init__(self) -> None:
            from recops_runtime.engines import load_engine
            from recops_runtime.scoring.model_version import open_version
            from recops_runtime.telemetry.series import RuntimeMetrics

            # The service's own load, checks, id maps and top-k: only the batching differs.
            self.version = open_version(
                "v1",
                engine_dir,
                load_engine,
                RuntimeMetrics(),
                threads=threads,
                max_batch_size=max_batch,
                max_batch_delay_s=0.0,
                max_queue=1024,
            )

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=0.001)
        async def score(self, jobs: list[Any]) -> list[Any]:
            import asyncio

            return await asyncio.to_thread(self.version.run_batch, jobs)

        async def Recommend(self, request: Any) -> Any:  # noqa: N802 (the RPC's name)
            from recops_runtime.scoring.model_version import NO_ITEMS, ScoreJob

            items = self.version.ids.items
            known = [items[i] for i in request.history if i in items]
            exclude = np.asarray(known, np.int64) if request.exclude_seen else NO_ITEMS
            user = self.version.ids.users.get(request.user_id, 0)
            k = request.k or 10
            if known:
                result = await self.score(ScoreJob(user, np.asarray(known, np.int64), exclude, k))
            else:
                result = self.version.fallback(exclude, k)
            names = self.version.ids.item_names
            scored = zip(result.items.tolist(), result.scores.tolist(), strict=True)
            return pb.RecommendResponse(
                items=[pb.ScoredItem(item_id=names[i], score=s) for i, s in scored],
                version="v1",
                target=self.version.target,
            )

    ray.init(
        _node_ip_address="127.0.0.1",
        _temp_dir=str(work / "ray"),
        include_dashboard=False,
        num_cpus=2,
        log_to_driver=False,
    )
    try:
        servicer = "recops_runtime.proto.recops.v1.recommender_pb2_grpc."
        serve.start(
            http_options={"host": "127.0.0.1", "port": free_port()},
            grpc_options=gRPCOptions(
                port=grpc_port,
                grpc_servicer_functions=[servicer + "add_RecommenderServicer_to_server"],
            ),
        )
        serve.run(RayRecommender.bind(), name="recommender", route_prefix="/")
        import psutil

        # Ray's processes (GCS, raylet, controller, proxy, replica) are this driver's
        # descendants; the load generator runs in the driver itself and is not counted.
        def ray_processes() -> list[Any]:
            return list(psutil.Process().children(recursive=True))

        return [load(f"127.0.0.1:{grpc_port}", c, args, ray_processes) for c in CONCURRENCY]
    finally:
        serve.shutdown()
        ray.shutdown()
