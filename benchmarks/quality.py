"""Offline quality: POP, Markov, SASRec and SSE-PT on ML-100K and ML-1M, both protocols.

Every row is measured in the same harness on the same leave-one-out split, with the same
seeded negatives: ``sampled`` (100 items the user never interacted with, the SSE-PT
reference protocol) and ``full`` (every item, the history excluded). Never compare numbers
across protocols.

Training a network is long on CPUs, so a finished model folder can stand in for a row
(``--model ml-1m:sse-pt=runs/ml1m-ssept/model``): it is scored here, and its training time
and epochs come from its metrics.json. Rows trained here use ``--epochs`` (per dataset).
Writes benchmarks/results/quality.json.

    python benchmarks/quality.py [--datasets ml-100k,ml-1m] [--epochs ml-100k=100,ml-1m=200]
        [--model ml-1m:sse-pt=DIR ...] [--threads 1] [--keep] [--skip ml-1m:sasrec]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quality.json"
DATA = Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "dataset": {"format": "movielens-100k", "uri": str(DATA / "ml-100k" / "u.data.gz")},
        # The quick configuration: the paper's settings with a 50-item history.
        "model": {"maxlen": 50, "epochs": 100},
        "training": {"evalEvery": 10, "patience": 3},
    },
    "ml-1m": {
        "dataset": {"format": "sasrec", "uri": str(DATA / "ml-1m" / "ml-1m.txt.gz")},
        "model": {"maxlen": 200, "epochs": 200},
        "training": {"evalEvery": 20, "patience": 5},
    },
}
ARCHITECTURES = ("sasrec", "sse-pt")


def _pairs(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


def _hardware() -> dict[str, Any]:
    import torch

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _row(name: str, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, **extra}
    for protocol in ("sampled", "full"):
        values = result[protocol]
        for metric in ("ndcg@10", "hr@10", "mrr"):
            row[f"{protocol}_{metric}"] = round(float(values[metric]), 4)
    return row


def run_dataset(
    key: str, epochs: int | None, models: dict[str, str], threads: int, skip: set[str]
) -> list[dict[str, Any]]:
    from recops_trainer.baselines import Markov, Popularity
    from recops_trainer.config import parse_config
    from recops_trainer.evaluate import evaluate
    from recops_trainer.model_io import load_model
    from recops_trainer.pipeline import run_training
    from recops_trainer.snapshot import load_source
    from recops_trainer.split import leave_one_out
    from recops_trainer.train import model_scorer

    spec = DATASETS[key]
    base = parse_config(spec)
    snapshot = load_source(base.dataset)
    split = leave_one_out(snapshot)
    maxlen = base.model.maxlen
    rows = []
    for scorer in (Popularity(split), Markov(split)):
        started = time.perf_counter()
        result = evaluate(split, scorer, maxlen=maxlen)
        rows.append(
            _row(scorer.name, result, train_seconds=round(time.perf_counter() - started, 1))
        )
    for architecture in ARCHITECTURES:
        if f"{key}:{architecture}" in skip:
            continue
        folder = models.get(f"{key}:{architecture}")
        if folder:
            loaded = load_model(Path(folder))
            if loaded.data_manifest.get("hash") != snapshot.hash:
                raise SystemExit(f"{folder} was trained on other data than {key}")
            result = evaluate(split, model_scorer(loaded.model), maxlen=loaded.model.shape.maxlen)
            info = loaded.metrics
            rows.append(
                _row(
                    architecture,
                    result,
                    train_seconds=round(float(info.get("train_seconds", 0.0)), 1),
                    epochs=info.get("epochs"),
                    best_epoch=info.get("best_epoch"),
                    source=Path(folder).name,
                )
            )
            continue
        config = spec | {
            "model": spec["model"]
            | {"architecture": architecture}
            | ({"epochs": epochs} if epochs else {}),
            "training": spec["training"] | {"threads": threads},
        }
        outcome = run_training(parse_config(config))
        rows.append(
            _row(
                architecture,
                outcome.test,
                train_seconds=round(outcome.seconds, 1),
                epochs=outcome.state.epoch,
                best_epoch=outcome.state.best_epoch,
            )
        )
    for row in rows:
        row["dataset"] = key
        row["dataset_hash"] = snapshot.hash[:12]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-1m")
    parser.add_argument("--epochs", default="", help="per dataset, e.g. ml-100k=100,ml-1m=200")
    parser.add_argument("--model", action="append", default=[], help="DATASET:ARCH=DIR")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], help="DATASET:ARCH not to run")
    parser.add_argument(
        "--keep", action="store_true", help="keep rows of other datasets already in the JSON"
    )
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(args.threads)
    epochs = {k: int(v) for k, v in _pairs(args.epochs).items()}
    models: dict[str, str] = {}
    for item in args.model:
        models.update(_pairs(item))
    rows: list[dict[str, Any]] = []
    wanted = args.datasets.split(",")
    for key in wanted:
        rows += run_dataset(key, epochs.get(key), models, args.threads, set(args.skip))
    if args.keep and RESULTS.is_file():
        kept = json.loads(RESULTS.read_text()).get("rows", [])
        rows = [r for r in kept if r["dataset"] not in wanted] + rows

    table = Table(title="Offline quality (test split; never compare across protocols)")
    for column in ("dataset", "model", "sampled NDCG@10", "sampled HR@10", "full NDCG@10",
                   "full HR@10", "full MRR", "epochs", "train s"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["dataset"],
            row["model"],
            f"{row['sampled_ndcg@10']:.4f}",
            f"{row['sampled_hr@10']:.4f}",
            f"{row['full_ndcg@10']:.4f}",
            f"{row['full_hr@10']:.4f}",
            f"{row['full_mrr']:.4f}",
            str(row.get("epochs", "")),
            str(row["train_seconds"]),
        )
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "protocols": {
            "sampled": "test item vs 100 uniformly drawn items the user never interacted with",
            "full": "test item vs every item, the user's history excluded",
        },
        "hardware": _hardware(),
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
