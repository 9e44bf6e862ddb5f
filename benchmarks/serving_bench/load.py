"""One closed-loop run of `recops loadtest`'s generator, with the servers' CPU it cost."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any


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


def load(
    target: str,
    concurrency: int,
    args: argparse.Namespace,
    servers: Callable[[], list[Any]],
    feedback: bool = False,
) -> dict[str, Any]:
    """One closed-loop run; ``servers()`` lists the serving processes whose CPU is counted."""
    from recops_runtime.eventloop import freeze_heap
    from recops_runtime.tools.loadtest import LoadtestSettings, run_loadtest
    from recops_runtime.tools.sequences import read_sequences

    requests = args.requests if concurrency > 1 else min(args.requests, 1000)
    processes = servers()
    settings = LoadtestSettings(
        target=target,
        dataset=args.data,
        concurrency=concurrency,
        requests=requests,
        duration_s=args.duration,
        max_users=args.max_users,
        timeout_s=10.0,
        feedback=feedback,
        connections=min(concurrency, args.connections),
    )
    if args.sequences is None:
        args.sequences = read_sequences(args.data, max_users=args.max_users)
        freeze_heap()
    cpu_before, client_before = cpu_seconds(processes), time.process_time()
    wall_before = time.perf_counter()
    report = run_loadtest(settings, args.sequences)
    wall = time.perf_counter() - wall_before
    served = max(1, report.overall.ok)
    server_cpu = cpu_seconds(processes) - cpu_before
    # The generator runs in this process (for the Ray peer, beside the Ray driver's threads).
    client_cpu = time.process_time() - client_before
    cores = os.cpu_count() or 1
    return {
        "concurrency": concurrency,
        "feedback": feedback,
        "rps": report.throughput_rps,
        "p50_ms": report.p50_ms,
        "p90_ms": report.p90_ms,
        "p99_ms": report.p99_ms,
        "server_cpu_ms_per_rec": 1000 * server_cpu / served,
        "client_cpu_ms_per_rec": 1000 * client_cpu / served,
        # Shares of the machine's CPU time over the run (1.0: every core busy).
        "server_cpu_share": server_cpu / (wall * cores),
        "client_cpu_share": client_cpu / (wall * cores),
        "connections": settings.connections,
        "error_rate": report.error_rate,
        "feedback_sent": report.feedback_sent,
        "hit_rate": report.overall.hit_rate,
    }
