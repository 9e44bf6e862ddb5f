"""Serving benchmark: the raw engine, `recops serve` and a Ray Serve peer, on ML-1M.

For each CPU engine (cpu-onnxruntime, cpu-openvino by default) it measures, in one run on
this machine:

1. the raw engine's batched throughput, in-process, on real held-out ML-1M histories:
   one engine instance at batch 1, 8, 16, 32 with 1 and 2 intra-op threads (the baseline
   the service is held to is the best of these), and as many single-threaded instances as
   the service runs, scoring side by side (what the engine alone does with every core);
2. `recops serve` (a real process on 127.0.0.1, its default engine workers and threads
   unless `--engine-workers` / `--engine-threads` are given) under `recops loadtest`'s
   closed loop at concurrency 1, 8 and 64: throughput, p50 and p99 latency, errors, server
   CPU per recommendation; then concurrency 64 again with simulated clicks (Feedback RPCs
   on top of the Recommend calls, the production mix);
3. the peer: Ray Serve with `@serve.batch` around the same engine and the same top-k code
   (as many replicas as the service has engine workers), behind Ray Serve's gRPC proxy
   with the same proto, under the same load generator. The peer implements Recommend
   only, so the compared runs send no Feedback.

The model is the ML-1M SSE-PT model folder (`--model`, default runs/ml1m-ssept/model).
Without one it builds an untrained network of the same shape on the same data, which
costs exactly the same to run (the table says which). Prints a table and writes
benchmarks/results/serving.json and serving.png (throughput and p99 by concurrency).

    python benchmarks/serving.py [--targets cpu-onnxruntime] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))
from ports import free_port  # noqa: E402  (the tests' harness, one copy)

RESULTS = REPO / "benchmarks" / "results" / "serving.json"
DEFAULT_DATA = (
    Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "ml-1m"
    / "ml-1m.txt.gz"
)
CONCURRENCY = (1, 8, 64)


# ---- engines --------------------------------------------------------------------------


def model_folder(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The trained model folder, or an untrained one of the same shape on the same data."""
    if args.model.is_dir():
        where = args.model.resolve()
        shown = where.relative_to(REPO) if where.is_relative_to(REPO) else Path(where.name)
        metrics = json.loads((args.model / "metrics.json").read_text() or "{}")
        epoch = metrics.get("best_epoch")
        return args.model, f"trained ({shown}{f', best epoch {epoch}' if epoch else ''})"
    import torch

    from recops_trainer.config import DatasetFormat, DatasetSource
    from recops_trainer.model import SSEPT, ModelShape
    from recops_trainer.model_io import IdMaps, save_model
    from recops_trainer.snapshot import load_source

    folder = work / "untrained-model"
    if not folder.is_dir():
        snapshot = load_source(DatasetSource(format=DatasetFormat.SASREC, uri=str(args.data)))
        torch.manual_seed(0)
        shape = ModelShape(snapshot.num_users, snapshot.num_items, maxlen=200, item_dim=50,
                           user_dim=50, num_blocks=2, num_heads=1, dropout=0.2)  # fmt: skip
        counts = np.bincount(np.concatenate(snapshot.sequences), minlength=shape.num_items + 1)
        popular = (np.argsort(-counts[1:], kind="stable")[:1000] + 1).tolist()
        save_model(folder, SSEPT(shape).eval(),
                   id_maps=IdMaps(snapshot.user_ids, snapshot.item_ids, popular),
                   data_manifest=snapshot.manifest, model_version="untrained")  # fmt: skip
    return folder, "untrained, ML-1M shape (2 blocks, width 100, history 200, 3,416 items)"


def build_engines(args: argparse.Namespace, work: Path) -> tuple[dict[str, Path], str]:
    from recops_runtime.engines import BuildOptions, build_engine
    from recops_trainer.export import export_bundle
    from recops_trainer.model_io import weights_sha256

    model, label = model_folder(args, work)
    # A training run may still replace its model folder: work on a copy, and cache engines
    # per model weights, so a retrained model is compiled afresh.
    staging = work / "models" / ".copying"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model, staging)
    key = weights_sha256(staging)[:12]
    model = work / "models" / key
    if model.is_dir():
        shutil.rmtree(staging)
    else:
        staging.rename(model)
    engines = {t: work / "engines" / key / t for t in args.targets}
    missing = [t for t, path in engines.items() if not path.is_dir()]
    if missing:
        bundle = export_bundle(model, work / "export" / key, data=str(args.data), parity_users=200,
                               calibration_users=64, edge_maxlen=None)  # fmt: skip
        for target in missing:
            build_engine(bundle, target, engines[target],
                         BuildOptions(parity_users=200, latency_batches=(1,),
                                      latency_budget_s=0.2))  # fmt: skip
    return engines, label


def histories(args: argparse.Namespace, maxlen: int, count: int) -> list[list[str]]:
    from recops_runtime.sequences import read_sequences

    rng = np.random.default_rng(0)
    sequences = read_sequences(args.data, max_users=args.max_users)
    picked = rng.choice(len(sequences), size=count)
    return [list(sequences[i].items[:-1][-maxlen:]) for i in picked]


def engine_inputs(engine_dir: Path, args: argparse.Namespace, maxlen: int) -> tuple[Any, Any]:
    """User ids and padded history rows of 512 held-out histories, as the service builds them."""
    from recops_runtime.engines.base import ID_MAPS_FILE

    items = json.loads((engine_dir / ID_MAPS_FILE).read_text())["items"]
    index = {item: i for i, item in enumerate(items, 1)}
    rows = []
    for history in histories(args, maxlen, 512):
        known = [index[i] for i in history if i in index][-maxlen:]
        row = np.zeros(maxlen, np.int64)
        row[maxlen - len(known) :] = known
        rows.append(row)
    return np.ones(len(rows), np.int64), np.stack(rows)


def raw_engine(engine_dir: Path, args: argparse.Namespace, threads: int) -> list[dict[str, float]]:
    """Users/s of the engine alone, on the same held-out histories the load replays."""
    from recops_runtime.engines import load_engine

    engine = load_engine(engine_dir, threads)
    users, matrix = engine_inputs(engine_dir, args, engine.manifest.input_spec.maxlen)
    results = []
    for batch in (1, 8, 16, 32):
        engine.score(users[:batch], matrix[:batch])
        done, started, i, cpu = 0, time.perf_counter(), 0, time.process_time()
        while time.perf_counter() - started < args.raw_seconds:
            lo = (i * batch) % (len(matrix) - batch)
            engine.score(users[lo : lo + batch], matrix[lo : lo + batch])
            done, i = done + batch, i + 1
        elapsed = time.perf_counter() - started
        results.append({"threads": threads, "batch": batch, "users_per_s": done / elapsed,
                        "ms_per_batch": 1000 * elapsed / i,
                        "cpu_ms_per_user": 1000 * (time.process_time() - cpu) / done})  # fmt: skip
    engine.close()
    return results


def raw_parallel(engine_dir: Path, args: argparse.Namespace, instances: int,
                 batch: int) -> dict[str, float]:  # fmt: skip
    """Users/s of ``instances`` single-threaded engines scoring side by side."""
    import threading

    from recops_runtime.engines import load_engine

    engines = [load_engine(engine_dir, 1) for _ in range(instances)]
    users, matrix = engine_inputs(engine_dir, args, engines[0].manifest.input_spec.maxlen)
    done = [0] * instances
    start = threading.Barrier(instances + 1)

    def score(n: int) -> None:
        engine = engines[n]
        engine.score(users[:batch], matrix[:batch])
        start.wait()
        i, until = n * 97, time.perf_counter() + args.raw_seconds
        while time.perf_counter() < until:
            lo = (i * batch) % (len(matrix) - batch)
            engine.score(users[lo : lo + batch], matrix[lo : lo + batch])
            done[n], i = done[n] + batch, i + 1

    threads = [threading.Thread(target=score, args=(n,)) for n in range(instances)]
    for thread in threads:
        thread.start()
    start.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for engine in engines:
        engine.close()
    total = sum(done)
    return {"instances": instances, "threads": 1, "batch": batch,
            "users_per_s": total / elapsed, "ms_per_batch": 1000 * elapsed * instances * batch
            / total, "cpu_ms_per_user": 1000 * (time.process_time() - cpu) / total}  # fmt: skip


# ---- the service and the peer ---------------------------------------------------------


def cpu_seconds(processes: list[Any]) -> float:
    """User + system CPU seconds of the given processes (those gone count 0)."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def load(target: str, concurrency: int, args: argparse.Namespace, servers: Any,
         feedback: bool = False) -> dict[str, Any]:  # fmt: skip
    """One closed-loop run; ``servers()`` lists the serving processes whose CPU is counted."""
    from recops_runtime.eventloop import freeze_heap
    from recops_runtime.loadtest import LoadtestSettings, run_loadtest
    from recops_runtime.sequences import read_sequences

    requests = args.requests if concurrency > 1 else min(args.requests, 1000)
    processes = servers()
    settings = LoadtestSettings(
        target=target, dataset=args.data, concurrency=concurrency, requests=requests,
        duration_s=args.duration, max_users=args.max_users, timeout_s=10.0, feedback=feedback,
    )  # fmt: skip
    if args.sequences is None:
        args.sequences = read_sequences(args.data, max_users=args.max_users)
        freeze_heap()
    cpu_before, client_before = cpu_seconds(processes), time.process_time()
    report = run_loadtest(settings, args.sequences)
    served = max(1, report.overall.ok)
    cpu_ms = 1000 * (cpu_seconds(processes) - cpu_before) / served
    # The generator runs in this process (for the Ray peer, beside the Ray driver's threads).
    client_ms = 1000 * (time.process_time() - client_before) / served
    return {"concurrency": concurrency, "feedback": feedback, "rps": report.throughput_rps,
            "p50_ms": report.p50_ms, "p90_ms": report.p90_ms, "p99_ms": report.p99_ms,
            "server_cpu_ms_per_rec": cpu_ms, "client_cpu_ms_per_rec": client_ms,
            "error_rate": report.error_rate,
            "feedback_sent": report.feedback_sent,
            "hit_rate": report.overall.hit_rate}  # fmt: skip


def run_service(engine_dir: Path, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    ports = [free_port() for _ in range(3)]
    command = [
        str(Path(sys.executable).with_name("recops")), "serve", "--engine", f"v1={engine_dir}",
        "--host", "127.0.0.1", "--grpc-port", str(ports[0]), "--http-port", str(ports[1]),
        "--metrics-port", str(ports[2]), "--max-batch-size", str(args.max_batch_size),
        "--log-level", "WARNING",
    ]  # fmt: skip
    if args.engine_workers:
        command += ["--engine-workers", str(args.engine_workers)]
    if args.engine_threads:
        command += ["--engine-threads", str(args.engine_threads)]
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if "ready" not in line:
            raise RuntimeError(f"recops serve did not start: {(work / 'serve.log').read_text()}")
        import psutil

        process = psutil.Process(server.pid)
        target = f"127.0.0.1:{ports[0]}"
        rows = [load(target, c, args, lambda: [process]) for c in CONCURRENCY]
        return [*rows, load(target, CONCURRENCY[-1], args, lambda: [process], feedback=True)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


ECHO_SERVER = """
import asyncio, sys
import grpc
from recops_runtime.eventloop import run
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb
from recops_runtime.proto.recops.v1 import recommender_pb2_grpc as pb_grpc

REPLY = pb.RecommendResponse(
    items=[pb.ScoredItem(item_id=str(i), score=1.0) for i in range(10)], version="v1"
)

class Echo(pb_grpc.RecommenderServicer):
    async def Recommend(self, request, context):
        return REPLY

async def main():
    server = grpc.aio.server()
    pb_grpc.add_RecommenderServicer_to_server(Echo(), server)
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()

run(main())
"""


def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    """The transport's ceiling: a gRPC server that answers a fixed list, no engine, no
    data plane, on the same event loop, under the same load at the highest concurrency."""
    import psutil

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
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
    @serve.deployment(num_replicas=args.resolved_workers, max_ongoing_requests=256,
                      ray_actor_options={"num_cpus": 0})  # fmt: skip
    class RayRecommender:
        def __init__(self) -> None:
            from recops_runtime.engines import load_engine
            from recops_runtime.metrics import RuntimeMetrics
            from recops_runtime.versions import open_version

            # The service's own load, checks, id maps and top-k: only the batching differs.
            self.version = open_version(
                "v1", engine_dir, load_engine, RuntimeMetrics(), threads=threads,
                max_batch_size=max_batch, max_batch_delay_s=0.0, max_queue=1024,
            )  # fmt: skip

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=0.001)
        async def score(self, jobs: list[Any]) -> list[Any]:
            import asyncio

            return await asyncio.to_thread(self.version.run_batch, jobs)

        async def Recommend(self, request: Any) -> Any:  # noqa: N802 (the RPC's name)
            from recops_runtime.versions import NO_ITEMS, ScoreJob

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
            return pb.RecommendResponse(
                items=[pb.ScoredItem(item_id=names[i], score=s)
                       for i, s in zip(result.items.tolist(), result.scores.tolist(),
                                       strict=True)],
                version="v1", target=self.version.target,
            )  # fmt: skip

    ray.init(_node_ip_address="127.0.0.1", _temp_dir=str(work / "ray"), include_dashboard=False,
             num_cpus=2, log_to_driver=False)  # fmt: skip
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": free_port()},
            grpc_options=gRPCOptions(port=grpc_port, grpc_servicer_functions=[
                "recops_runtime.proto.recops.v1.recommender_pb2_grpc."
                "add_RecommenderServicer_to_server"
            ]),
        )  # fmt: skip
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


# ---- report ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "runs" / "ml1m-ssept" / "model")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--targets", default="cpu-onnxruntime,cpu-openvino")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds per load run.")
    parser.add_argument("--raw-seconds", type=float, default=3.0)
    parser.add_argument("--max-users", type=int, default=None)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument(
        "--engine-workers", type=int, default=0, help="Engine instances (0: `recops serve`'s)."
    )
    parser.add_argument(
        "--engine-threads", type=int, default=0, help="Intra-op threads (0: `recops serve`'s)."
    )
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "serving-bench")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.sequences = None  # read once, replayed by every load run
    from recops_runtime.eventloop import loop_name
    from recops_runtime.settings import BatchingSettings

    if not args.data.is_file():
        sys.exit(f"ML-1M not found at {args.data} (set RECOPS_SHARED_DATA or pass --data)")
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    engines, model_label = build_engines(args, args.work)
    # What `recops serve` will run (its own defaults unless told otherwise).
    batching = BatchingSettings(engine_workers=args.engine_workers or None,
                                engine_threads=args.engine_threads or None)  # fmt: skip
    args.resolved_workers = batching.resolved_engine_workers()
    args.resolved_threads = batching.resolved_engine_threads(args.resolved_workers)
    results: dict[str, Any] = {
        "model": model_label, "cpus": os.cpu_count(), "machine": platform.processor() or
        platform.machine(), "load_average_at_start": os.getloadavg()[0],
        "max_batch_size": args.max_batch_size, "engine_workers": args.resolved_workers,
        "engine_threads": args.resolved_threads, "event_loop": loop_name(), "targets": {},
    }  # fmt: skip
    results["echo"] = run_echo(args)
    for target, engine_dir in engines.items():
        raw = [r for t in (1, 2) for r in raw_engine(engine_dir, args, t)]
        parallel = [
            raw_parallel(engine_dir, args, args.resolved_workers, batch) for batch in (1, 16)
        ] if args.resolved_workers > 1 else []  # fmt: skip
        entry: dict[str, Any] = {"raw": raw, "raw_parallel": parallel,
                                 "service": run_service(engine_dir, args, args.work)}  # fmt: skip
        if not args.skip_ray and target == args.targets[0]:
            entry["ray_serve"] = run_ray_peer(engine_dir, args, args.work)
        results["targets"][target] = entry
    results["load_average_at_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    plot(results, RESULTS.with_suffix(".png"))
    shutil.rmtree(args.work / "ray", ignore_errors=True)


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for target, entry in results["targets"].items():
        best = max(r["users_per_s"] for r in entry["raw"])
        best_parallel = max((r["users_per_s"] for r in entry["raw_parallel"]), default=0.0)
        raw = Table(title=f"{target}: raw engine ({results['model']})")
        for column in ("instances", "threads", "batch", "users/s", "ms/batch", "CPU ms/user"):
            raw.add_column(column)
        for r in [*entry["raw"], *entry["raw_parallel"]]:
            raw.add_row(str(r.get("instances", 1)), str(r["threads"]), str(r["batch"]),
                        f"{r['users_per_s']:.0f}", f"{r['ms_per_batch']:.2f}",
                        f"{r['cpu_ms_per_user']:.2f}")  # fmt: skip
        console.print(raw)
        table = Table(title=f"{target}: served by {results['engine_workers']} engine worker(s) x "
                      f"{results['engine_threads']} thread(s), {results['event_loop']} (closed "
                      "loop, load generator on the same CPUs)")  # fmt: skip
        columns = ["server", "concurrency", "clicks", "recs/s", "% of raw (1 engine)"]
        if best_parallel:
            columns.append(f"% of raw ({results['engine_workers']} engines)")
        columns += ["p50 ms", "p99 ms", "errors", "server CPU ms/rec", "load gen CPU ms/rec"]
        for column in columns:
            table.add_column(column)
        for name in ("service", "ray_serve"):
            for r in entry.get(name, []):
                cells = [
                    "recops serve" if name == "service" else "Ray Serve @serve.batch",
                    str(r["concurrency"]),
                    "yes" if r.get("feedback") else "no",
                    f"{r['rps']:.0f}",
                    f"{100 * r['rps'] / best:.0f}%",
                ]
                if best_parallel:
                    cells.append(f"{100 * r['rps'] / best_parallel:.0f}%")
                cells += [f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['error_rate']:.3f}",
                          f"{r['server_cpu_ms_per_rec']:.2f}",
                          f"{r['client_cpu_ms_per_rec']:.2f}"]  # fmt: skip
                table.add_row(*cells)
        console.print(table)
    echo = results["echo"]
    console.print(
        f"transport ceiling (gRPC echo server, no engine, concurrency {echo['concurrency']}): "
        f"{echo['rps']:.0f} req/s, p99 {echo['p99_ms']:.1f} ms, server CPU "
        f"{echo['server_cpu_ms_per_rec']:.2f} ms/req, load generator CPU "
        f"{echo['client_cpu_ms_per_rec']:.2f} ms/req"
    )
    console.print(
        f"load average {results['load_average_at_start']:.1f} at start, "
        f"{results['load_average_at_end']:.1f} at end, on {results['cpus']} CPUs"
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 against concurrency, per engine and server, beside the raw engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, tail) = plt.subplots(1, 2, figsize=(11, 4))
    for target, entry in results["targets"].items():
        for name, label in (("service", "recops serve"), ("ray_serve", "Ray Serve")):
            rows = [r for r in entry.get(name, []) if not r.get("feedback")]
            if not rows:
                continue
            x = [r["concurrency"] for r in rows]
            style = "-o" if name == "service" else "--s"
            rate.plot(x, [r["rps"] for r in rows], style, label=f"{label}, {target}")
            tail.plot(x, [r["p99_ms"] for r in rows], style, label=f"{label}, {target}")
        best = max(r["users_per_s"] for r in entry["raw"])
        rate.axhline(best, linestyle=":", linewidth=1, color="grey")
        rate.annotate(f"raw {target} (1 instance)", (1, best), fontsize=7, color="grey")
    for axis, title in ((rate, "recommendations/s"), (tail, "p99 latency, ms")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrency (closed loop)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    tail.set_yscale("log")
    rate.legend(fontsize=7)
    fig.suptitle(f"ML-1M SSE-PT on {results['cpus']} CPUs, load generator on the same CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
