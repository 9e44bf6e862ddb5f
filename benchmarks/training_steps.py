"""Seconds per training step on ML-1M for each loss, with the candidates' logits gathered
per candidate (the baseline) and picked from the whole catalogue's scores, in one run.

Each row trains the same SASRec (item embeddings of 128, 2 blocks, history of 200) on
batches of 128 users drawn by the trainer's own sampler, through the trainer's own step
(length groups, forward, backward, Adam), after one warm-up step; ``auto`` is the path the
trainer chooses (``training.steps.scores_through_catalogue``).

    python benchmarks/training_steps.py [--steps 5] [--threads 1] [--negatives 1,16,128]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ml-1m" / "ml-1m.txt.gz"
RESULTS = REPO / "benchmarks" / "results" / "training_steps.json"
PATHS = {"gather": False, "catalogue": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--negatives", default="1,16,128", help="per position, comma-separated")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from recops_contracts.training import DatasetFormat, DatasetSource, ModelHyperparameters
    from recops_trainer.data.sampler import TrainSampler
    from recops_trainer.data.sources import load_source
    from recops_trainer.data.split import leave_one_out
    from recops_trainer.training import steps as train

    torch.set_num_threads(args.threads)
    split = leave_one_out(
        load_source(DatasetSource(format=DatasetFormat.SASREC, uri=str(args.data)))
    )
    chosen = train.scores_through_catalogue
    cases: list[tuple[str, int]] = []
    for count in (int(n) for n in args.negatives.split(",")):
        cases.append(("bce" if count == 1 else "sampled-softmax", count))
    rows: list[dict[str, Any]] = []
    console = Console(width=120)
    for loss, negatives in cases:
        auto = "catalogue" if chosen(negatives + 1, split.num_items) else "gather"
        for path, through in PATHS.items():
            hp = ModelHyperparameters.model_validate(
                {"architecture": "sasrec", "maxlen": 200, "itemDim": 128, "batchSize": 128}
                | {"loss": loss, "negatives": negatives, "seed": 0}
            )
            # Force the path under test: the step reads the module's choice at call time.
            train.scores_through_catalogue = lambda _c, _n, through=through: through  # type: ignore[misc]
            try:
                seconds = _seconds_per_step(split, hp, args.steps, TrainSampler, train, torch)
            finally:
                train.scores_through_catalogue = chosen
            rows.append(
                {
                    "loss": loss,
                    "negatives": negatives,
                    "path": path,
                    "chosen": path == auto,
                    "seconds_per_step": round(seconds, 3),
                    "epoch_seconds": round(seconds * split.num_users / hp.batch_size, 1),
                }
            )
            console.log(rows[-1])
    _table(console, rows, split.num_items, args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {"processor": platform.processor() or platform.machine(), "threads": args.threads}
    args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    console.print(f"wrote {args.json}")


def _seconds_per_step(
    split: Any, hp: Any, steps: int, sampler_type: Any, train: Any, torch: Any
) -> float:
    torch.manual_seed(0)
    model = train.build_model(split, hp)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate)
    sampler = sampler_type(split, hp.maxlen, negatives=hp.negatives, seed=0)
    model.train()
    timings = []
    for step in range(steps + 1):
        batch = sampler.batch(hp.batch_size)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        train._accumulate_gradients(model, batch, hp, split.num_items, torch.device("cpu"))
        optimizer.step()
        if step:  # the first step warms up the allocator and the kernels
            timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2]


def _table(console: Console, rows: list[dict[str, Any]], items: int, threads: int) -> None:
    table = Table(title=f"training step, ML-1M ({items:,} items), {threads} thread(s), median")
    for column in ("loss", "negatives", "path", "s / step", "epoch s", "vs gather"):
        table.add_column(column, justify="right" if column not in ("loss", "path") else "left")
    gathered = {
        (r["loss"], r["negatives"]): r["seconds_per_step"] for r in rows if r["path"] == "gather"
    }
    for row in rows:
        base = gathered[(row["loss"], row["negatives"])]
        table.add_row(
            row["loss"],
            str(row["negatives"]),
            row["path"] + (" (chosen)" if row["chosen"] else ""),
            f"{row['seconds_per_step']:.2f}",
            f"{row['epoch_seconds']:.0f}",
            f"{base / row['seconds_per_step']:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
