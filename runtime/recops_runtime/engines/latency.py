"""Latency of an engine at fixed batch sizes on real histories (p50, p99, throughput)."""

from __future__ import annotations

import time

import numpy as np

from recops_contracts.engine_manifest import LatencyResult
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.parity import ScoreFn

DEFAULT_BATCHES = (1, 8, 64)


def measure(
    score: ScoreFn,
    users: UserSequences,
    batch: int,
    *,
    min_runs: int = 20,
    max_runs: int = 500,
    budget_s: float = 3.0,
    warmup: int = 3,
) -> LatencyResult:
    """Time ``score`` on consecutive batches of real users until ``budget_s`` or ``max_runs``.

    Batches cycle through the users so that each call sees new histories (no cache luck);
    at least ``min_runs`` calls are timed whatever the budget, so p99 means something.
    """
    n = len(users)
    if n == 0:
        raise ValueError("latency needs at least one user")
    index = np.arange(batch) % n
    for _ in range(warmup):
        score(users.user_ids[index], users.history[index])
    times: list[float] = []
    start = 0
    deadline = time.perf_counter() + budget_s
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < deadline):
        index = (np.arange(batch) + start) % n
        start += batch
        user_ids, history = users.user_ids[index], users.history[index]
        t0 = time.perf_counter()
        score(user_ids, history)
        times.append(time.perf_counter() - t0)
    seconds = np.asarray(times)
    return LatencyResult(
        batch=batch,
        p50_ms=float(np.percentile(seconds, 50) * 1e3),
        p99_ms=float(np.percentile(seconds, 99) * 1e3),
        users_per_second=float(batch * len(seconds) / seconds.sum()),
    )
