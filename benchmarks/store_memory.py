"""Bytes per entry of each per-user store of `recops serve`: measured beside the estimate
its byte budget counts (``recops_runtime.stores.entry_sizes``).

Each row fills one store with ``--entries`` entries shaped as a row says (the worst a client
can send: k=1000, ids of 256 characters), with no budget in the way, and reads how many
bytes Python allocated for them with tracemalloc (every allocation, containers and strings,
after the temporaries were freed); "estimate" is what the store's budget counted for the
same entries. The budget is sound when the estimate is not below the measure.

    python benchmarks/store_memory.py [--entries 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from recops_runtime.scoring.model_version import ScoreResult
from recops_runtime.stores.history import InMemoryHistoryStore
from recops_runtime.stores.served import LocalServedLists, Served
from recops_runtime.stores.topk_cache import TopKCache, cache_key

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "store_memory.json"
UNBOUNDED = 1 << 50


def long_id(kind: str, n: int, length: int) -> str:
    return f"{kind}-{n:08d}-".ljust(length, "x")


def served_lists(k: int, ids_owned: bool) -> Callable[[int], tuple[object, int]]:
    names = [long_id("item", i, 16) for i in range(k)]  # one id map, shared as a version's

    def fill(entries: int) -> tuple[object, int]:
        store = LocalServedLists(capacity=UNBOUNDED, max_bytes=UNBOUNDED, ids_owned=ids_owned)
        for n in range(entries):
            items = (
                frozenset(long_id(f"i{i}-", n, 16) for i in range(k))
                if ids_owned
                else frozenset(names)
            )
            store.remember(long_id("request", n, 128), Served("v1", items))
        return store, store.bytes

    return fill


def histories(items: int) -> Callable[[int], tuple[object, int]]:
    def fill(entries: int) -> tuple[object, int]:
        store = InMemoryHistoryStore(max_users=UNBOUNDED, max_items=200, max_bytes=UNBOUNDED)
        for n in range(entries):
            user = long_id("user", n, 256)
            for i in range(items):
                store.append_now(user, long_id("item", n * 1000 + i, 256))
        return store, store.bytes

    return fill


def topk_lists(k: int) -> Callable[[int], tuple[object, int]]:
    history = np.arange(1, 201, dtype=np.int64)

    def fill(entries: int) -> tuple[object, int]:
        store = TopKCache(max_users=UNBOUNDED, max_bytes=UNBOUNDED)
        for n in range(entries):
            key = cache_key("v1", 1, n, history, history, k)
            result = ScoreResult(np.arange(k, dtype=np.int64), np.ones(k, dtype=np.float32))
            store.put(long_id("user", n, 256), key, result)
        return store, store.bytes

    return fill


ROWS: list[tuple[str, str, Callable[[int], tuple[object, int]]]] = [
    ("served", "k=10, ids shared with the id map", served_lists(10, False)),
    ("served", "k=100, ids shared with the id map", served_lists(100, False)),
    ("served", "k=1000, ids shared with the id map", served_lists(1000, False)),
    ("served", "k=1000, own ids (supervisor's copy)", served_lists(1000, True)),
    ("history", "1 item, ids of 256 characters", histories(1)),
    ("history", "200 items, ids of 256 characters", histories(200)),
    ("topk_cache", "k=10, user id of 256 characters", topk_lists(10)),
    ("topk_cache", "k=1000, user id of 256 characters", topk_lists(1000)),
]


def measure(fill: Callable[[int], tuple[object, int]], entries: int) -> tuple[float, float]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store, estimate = fill(entries)
        measured = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del store
    return measured / entries, estimate / entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for store, shape, fill in ROWS:
        # Fewer long histories: 200 items of 256 characters are 64 kB a user.
        entries = args.entries // 10 if "200 items" in shape else args.entries
        measured, estimate = measure(fill, entries)
        rows.append(
            {
                "store": store,
                "entry": shape,
                "entries": entries,
                "measured_bytes_per_entry": round(measured, 1),
                "estimated_bytes_per_entry": round(estimate, 1),
                "estimate_over_measured": round(estimate / measured, 3),
            }
        )

    console = Console()
    table = Table(title=f"bytes per entry (Python {platform.python_version()})")
    for column in ("store", "entry", "entries", "measured", "estimate", "estimate/measured"):
        table.add_column(column, justify="left" if column in ("store", "entry") else "right")
    for row in rows:
        table.add_row(
            row["store"],
            row["entry"],
            str(row["entries"]),
            f"{row['measured_bytes_per_entry']:,.0f}",
            f"{row['estimated_bytes_per_entry']:,.0f}",
            f"{row['estimate_over_measured']:.2f}",
        )
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
    }
    args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
