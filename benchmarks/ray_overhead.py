"""Ray Train overhead: the same epochs in the plain loop and under Ray Train (1 and 2 workers).

All three runs train the same configuration on the same snapshot in one process's
lifetime (Ray is started once, so its start-up is reported on its own): wall time of the
whole run, seconds per epoch, and the validation NDCG@10 each reaches, so a speed-up that
costs quality shows. Writes benchmarks/results/ray_overhead.json.

    python benchmarks/ray_overhead.py [--dataset synthetic|ml-100k] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "ray_overhead.json"
DATA = Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["synthetic", "ml-100k"])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()

    import ray
    from rich.console import Console
    from rich.table import Table

    from recops_trainer.config import parse_config
    from recops_trainer.data.snapshot import write_snapshot
    from recops_trainer.data.sources import load_source
    from recops_trainer.data.split import leave_one_out
    from recops_trainer.distributed.ray_train import LOCAL_SYSTEM_CONFIG, fit_on_ray
    from recops_trainer.training.loop import fit

    if args.dataset == "synthetic":
        dataset: dict[str, Any] = {"format": "synthetic"}
    else:
        dataset = {"format": "movielens-100k", "uri": str(DATA / "ml-100k" / "u.data.gz")}
    base = {
        "dataset": dataset,
        "model": {"maxlen": 50, "epochs": args.epochs, "batchSize": 128},
        "training": {"evalEvery": args.epochs, "threads": 1},
        "resources": {"cpusPerWorker": 1, "checkpointEvery": args.epochs},
    }
    snapshot = load_source(parse_config(base).dataset)
    split = leave_one_out(snapshot)
    work = Path(tempfile.mkdtemp(prefix="recops-ray-bench-"))
    folder = write_snapshot(snapshot, work / "snapshot")
    rows: list[dict[str, Any]] = []

    started = time.perf_counter()
    _, state = fit(split, parse_config(base).model, parse_config(base).training)
    rows.append(
        {
            "run": "plain loop",
            "workers": 1,
            "wall_s": time.perf_counter() - started,
            "epoch_s": sum(h["seconds"] for h in state.history) / len(state.history),
            "val_ndcg@10": state.best_score,
        }
    )
    started = time.perf_counter()
    ray.init(
        _node_ip_address="127.0.0.1",
        _temp_dir=str(work / "ray-tmp"),
        include_dashboard=False,
        num_cpus=max(2, os.cpu_count() or 1),
        configure_logging=False,
        _system_config=LOCAL_SYSTEM_CONFIG,
    )
    ray_start = time.perf_counter() - started
    for workers in (1, 2):
        config = parse_config(base | {"resources": base["resources"] | {"workers": workers}})
        started = time.perf_counter()
        state = fit_on_ray(config, folder, str(work / "ray"), name=f"bench-{workers}")
        rows.append(
            {
                "run": "Ray Train",
                "workers": workers,
                "wall_s": time.perf_counter() - started,
                "epoch_s": sum(h["seconds"] for h in state.history) / len(state.history),
                "val_ndcg@10": state.best_score,
            }
        )
    ray.shutdown()

    plain = rows[0]["wall_s"]
    table = Table(title=f"Ray Train overhead, {args.epochs} epochs on {args.dataset}")
    for column in ("run", "workers", "wall s", "epoch s", "vs plain", "val NDCG@10"):
        table.add_column(column)
    for row in rows:
        row["vs_plain"] = row["wall_s"] / plain
        table.add_row(
            row["run"],
            str(row["workers"]),
            f"{row['wall_s']:.1f}",
            f"{row['epoch_s']:.2f}",
            f"{row['vs_plain']:.2f}x",
            f"{row['val_ndcg@10']:.4f}",
        )
    Console().print(table)
    print(f"ray.init: {ray_start:.1f}s (not included above)")
    payload = {
        "dataset": args.dataset,
        "dataset_hash": snapshot.hash[:12],
        "epochs": args.epochs,
        "cpus": os.cpu_count(),
        "ray_init_s": ray_start,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
