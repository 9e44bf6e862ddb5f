"""Seconds to draw one training batch on ML-1M, with the excluded (user, item) pairs found
by a binary search over every training pair (the baseline) and by a dense mask, in one run.

Both draw the same batches (same seed, the same random stream): only the lookup differs.
Each row is the median over ``--batches`` batches of 128 users, history of 200, after one
warm-up batch.

    python benchmarks/sampling.py [--batches 10] [--negatives 1,16,100]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ml-1m" / "ml-1m.txt.gz"
RESULTS = REPO / "benchmarks" / "results" / "sampling.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--negatives", default="1,16,100", help="per position, comma-separated")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.data import sampler
    from recops_trainer.data.sources import load_source
    from recops_trainer.data.split import leave_one_out

    split = leave_one_out(
        load_source(DatasetSource(format=DatasetFormat.SASREC, uri=str(args.data)))
    )
    console = Console(width=120)
    rows: list[dict[str, Any]] = []
    dense_bytes = sampler.DENSE_MASK_BYTES
    for negatives in (int(n) for n in args.negatives.split(",")):
        timings: dict[str, float] = {}
        batches: dict[str, list[Any]] = {}
        for lookup, limit in (("search", 0), ("mask", dense_bytes)):
            sampler.DENSE_MASK_BYTES = limit
            try:
                draw = sampler.TrainSampler(split, 200, negatives=negatives, seed=0)
            finally:
                sampler.DENSE_MASK_BYTES = dense_bytes
            seconds = []
            batches[lookup] = []
            for index in range(args.batches + 1):
                started = time.perf_counter()
                batch = draw.batch(128)
                if index:  # the first batch warms the caches
                    seconds.append(time.perf_counter() - started)
                batches[lookup].append(batch.neg)
            timings[lookup] = sorted(seconds)[len(seconds) // 2]
        same = all(np.array_equal(a, b) for a, b in zip(*batches.values(), strict=True))
        rows.append(
            {
                "negatives": negatives,
                "search_seconds": round(timings["search"], 4),
                "mask_seconds": round(timings["mask"], 4),
                "speedup": round(timings["search"] / timings["mask"], 2),
                "epoch_search_seconds": round(timings["search"] * split.num_users / 128, 1),
                "epoch_mask_seconds": round(timings["mask"] * split.num_users / 128, 1),
                "same_batches": same,
            }
        )
        console.log(rows[-1])
    table = Table(title=f"one training batch, ML-1M ({split.num_items:,} items), median")
    for column in ("negatives", "search s", "mask s", "speedup", "epoch s (search, mask)", "same"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["negatives"]),
            f"{row['search_seconds']:.3f}",
            f"{row['mask_seconds']:.3f}",
            f"{row['speedup']:.1f}x",
            f"{row['epoch_search_seconds']:.0f}, {row['epoch_mask_seconds']:.0f}",
            "yes" if row["same_batches"] else "NO",
        )
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {"processor": platform.processor() or platform.machine()}
    args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
