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

The parts live in ``serving_bench/``: ``engines`` (the engines and their raw speed),
``load`` (one load run), ``servers`` and ``echo_server`` (what the load runs against),
``report`` (the table and the chart).

    python benchmarks/serving.py [--targets cpu-onnxruntime] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from serving_bench import REPO
from serving_bench.engines import build_engines, raw_engine, raw_parallel
from serving_bench.report import plot, print_table
from serving_bench.servers import run_echo, run_ray_peer, run_service

RESULTS = REPO / "benchmarks" / "results" / "serving.json"
DEFAULT_DATA = (
    Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "ml-1m"
    / "ml-1m.txt.gz"
)


def parse_args() -> argparse.Namespace:
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
    parser.add_argument(
        "--processes",
        default="1,0",
        help="Server processes of the `recops serve` rows, comma-separated (0: its default).",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="gRPC connections of the load generator, the same for every row (a server of "
        "several processes spreads connections over them).",
    )
    parser.add_argument(
        "--cache-users",
        type=int,
        default=100_000,
        help="One more run with the per-user top-k cache on for this many users, at the "
        "highest concurrency, reporting its hit rate on the replayed traffic (0: skip).",
    )
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "serving-bench")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.processes = [int(p) for p in args.processes.split(",") if p]
    args.sequences = None  # read once, replayed by every load run
    return args


def server_shape(args: argparse.Namespace, processes: int) -> dict[str, int]:
    """What `recops serve --processes P` runs on this machine (P = 0: its default)."""
    from recops_runtime.serve_settings import BatchingSettings, ServeSettings, usable_cpus

    resolved = processes or ServeSettings(engines={"v1": Path()}).resolved_processes()
    batching = BatchingSettings(
        engine_workers=args.engine_workers or None,
        engine_threads=args.engine_threads or None,
        cpus=max(1, usable_cpus() // resolved),
    )
    workers = batching.resolved_engine_workers()
    return {
        "processes": resolved,
        "engine_workers": workers,
        "engine_threads": batching.resolved_engine_threads(workers),
        "instances": resolved * workers,
    }


def main() -> None:
    args = parse_args()
    from recops_runtime.eventloop import loop_name
    from recops_runtime.serve_settings import BatchingSettings

    if not args.data.is_file():
        sys.exit(f"ML-1M not found at {args.data} (set RECOPS_SHARED_DATA or pass --data)")
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    engines, model_label = build_engines(args, args.work)
    # What `recops serve` will run (its own defaults unless told otherwise).
    batching = BatchingSettings(
        engine_workers=args.engine_workers or None, engine_threads=args.engine_threads or None
    )
    args.resolved_workers = batching.resolved_engine_workers()
    args.resolved_threads = batching.resolved_engine_threads(args.resolved_workers)
    # Each `recops serve` row: processes, engine workers and threads per process.
    servers = [server_shape(args, p) for p in args.processes]
    results: dict[str, Any] = {
        "model": model_label,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_at_start": os.getloadavg()[0],
        "max_batch_size": args.max_batch_size,
        "engine_workers": args.resolved_workers,
        "engine_threads": args.resolved_threads,
        "event_loop": loop_name(),
        "connections": args.connections,
        "servers": servers,
        "targets": {},
    }
    results["echo"] = run_echo(args)
    for target, engine_dir in engines.items():
        raw = [r for t in (1, 2) for r in raw_engine(engine_dir, args, t)]
        instances = sorted({args.resolved_workers, *(s["instances"] for s in servers)} - {1})
        parallel = [raw_parallel(engine_dir, args, n, b) for n in instances for b in (1, 16)]
        entry: dict[str, Any] = {
            "raw": raw,
            "raw_parallel": parallel,
            "service": [
                row for shape in servers for row in run_service(engine_dir, args, args.work, shape)
            ],
        }
        if args.cache_users:
            entry["service_cached"] = run_service(
                engine_dir, args, args.work, servers[-1], cache_users=args.cache_users
            )
        if not args.skip_ray and target == args.targets[0]:
            entry["ray_serve"] = run_ray_peer(engine_dir, args, args.work)
        results["targets"][target] = entry
    results["load_average_at_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    plot(results, RESULTS.with_suffix(".png"))
    shutil.rmtree(args.work / "ray", ignore_errors=True)


if __name__ == "__main__":
    main()
