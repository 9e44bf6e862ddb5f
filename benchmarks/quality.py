"""Offline quality: POP, Markov, SASRec and SSE-PT per loss on ML-100K and ML-1M, both protocols.

Every row is measured in the same harness on the same leave-one-out split, with the same
seeded negatives: ``sampled`` (100 items the user never interacted with, the SSE-PT
reference protocol) and ``full`` (every item, the history excluded). Never compare numbers
across protocols.

A network row is an architecture and a training loss (``--variants sasrec:bce,...``):
``bce`` (the papers', one negative), ``gbce`` and ``sampled-softmax`` (with the dataset's
``negatives``) or ``softmax`` (cross-entropy over the whole catalogue). On ML-1M the
``softmax`` row trains ``examples/training/ml1m-softmax.yaml``'s configuration.

Time to quality: from each row's training history, the first validation at or above
sampled NDCG@10 0.58 / 0.60 / 0.62 and full-ranking NDCG@10 0.15 / 0.18, with the
training seconds (epochs only) and the wall seconds (validations and checkpoints
included, for histories that record them) it took; the validation curves are drawn
against training time in benchmarks/results/quality_curve.png. The final numbers of the
quality table are on the test split, read once after training.

Training a network is long on CPUs, so a finished run can stand in for a row
(``--model ml-1m:sasrec:softmax=RUN/model``; ``ml-1m:sse-pt=DIR`` means the bce loss): it
is scored here, its training time and epochs come from its metrics.json, and its curve
from ``RUN/checkpoint/state.pt``. Rows trained here use ``--epochs`` (per dataset).
Writes benchmarks/results/quality.json and quality_curve.png.

    python benchmarks/quality.py [--datasets ml-100k,ml-1m] [--epochs ml-100k=100,ml-1m=200]
        [--variants sasrec:bce,sse-pt:bce,sasrec:softmax] [--model ml-1m:sse-pt=DIR ...]
        [--threads 1] [--keep] [--skip ml-1m:sasrec:bce]
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
CURVE = RESULTS.with_name("quality_curve.png")
DATA = Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
ML1M_SOFTMAX = REPO / "examples" / "training" / "ml1m-softmax.yaml"
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
DEFAULT_VARIANTS = "sasrec:bce,sse-pt:bce,sasrec:softmax"
# Per loss, what changes from the dataset's configuration (the example file on ML-1M).
LOSS_OVERRIDES: dict[str, dict[str, Any]] = {
    "gbce": {"model": {"negatives": 256}},
    "sampled-softmax": {"model": {"negatives": 256}},
    "softmax": {"model": {"itemDim": 64}, "training": {"evalEvery": 2, "patience": 10}},
}
# (protocol, validation NDCG@10) milestones of the time-to-quality table.
MILESTONES = (
    ("sampled", 0.58),
    ("sampled", 0.60),
    ("sampled", 0.62),
    ("full", 0.15),
    ("full", 0.18),
)


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved.name)


def _pairs(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


def _key(dataset: str, architecture: str, loss: str) -> str:
    return f"{dataset}:{architecture}:{loss}"


def _normalise(key: str) -> str:
    """``ml-1m:sse-pt`` (the older form) is ``ml-1m:sse-pt:bce``."""
    return key if key.count(":") == 2 else f"{key}:bce"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware(threads: int) -> dict[str, Any]:
    import torch

    return {
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def variant_config(key: str, architecture: str, loss: str, epochs: int | None) -> dict[str, Any]:
    """The training config of one row: the dataset's, changed for the architecture and loss."""
    spec = DATASETS[key]
    model = spec["model"] | {"architecture": architecture, "loss": loss}
    training = dict(spec["training"])
    if key == "ml-1m" and loss == "softmax":
        import yaml

        example = yaml.safe_load(ML1M_SOFTMAX.read_text())
        model |= example["model"] | {"architecture": architecture}
        training |= {k: v for k, v in example["training"].items() if k != "timeLimitMinutes"}
    else:
        model |= LOSS_OVERRIDES.get(loss, {}).get("model", {})
        training |= LOSS_OVERRIDES.get(loss, {}).get("training", {})
    if epochs:
        model["epochs"] = epochs
    return {"dataset": spec["dataset"], "model": model, "training": training}


def curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation points with the training seconds (epochs only) and, where the history
    records it, the wall seconds (validations and checkpoints included) up to them."""
    points = []
    train_s = 0.0
    for entry in history:
        train_s += float(entry["seconds"])
        if entry.get("val"):
            points.append(
                {
                    "epoch": entry["epoch"],
                    "train_s": round(train_s, 1),
                    "wall_s": entry.get("elapsed"),
                    "sampled_ndcg@10": round(float(entry["val"]["sampled"]["ndcg@10"]), 4),
                    "full_ndcg@10": round(float(entry["val"]["full"]["ndcg@10"]), 4),
                }
            )
    return points


def time_to_quality(points: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Per milestone, the first validation point at or above it (None: never reached)."""
    out: dict[str, dict[str, Any] | None] = {}
    for protocol, level in MILESTONES:
        hit = next((p for p in points if p[f"{protocol}_ndcg@10"] >= level), None)
        out[f"{protocol}_ndcg@10>={level:.2f}"] = (
            None
            if hit is None
            else {"epoch": hit["epoch"], "train_s": hit["train_s"], "wall_s": hit["wall_s"]}
        )
    return out


def epoch_phases(history: list[dict[str, Any]]) -> dict[str, float] | None:
    """Mean seconds per epoch in each phase, for histories that record them."""
    timed = [h["phases"] for h in history if h.get("phases")]
    if not timed:
        return None
    names = timed[0].keys()
    return {n: round(sum(t[n] for t in timed) / len(timed), 2) for n in names} | {
        "epoch": round(sum(h["seconds"] for h in history if h.get("phases")) / len(timed), 2)
    }


def _row(name: str, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, **extra}
    for protocol in ("sampled", "full"):
        values = result[protocol]
        for metric in ("ndcg@10", "hr@10", "mrr"):
            row[f"{protocol}_{metric}"] = round(float(values[metric]), 4)
    return row


def _history_of(folder: Path) -> list[dict[str, Any]]:
    """The training history of a run whose model folder is ``folder`` (empty if unknown)."""
    from recops_trainer.training.hooks import CHECKPOINT_DIR, STATE_FILE
    from recops_trainer.training.state import TrainState

    state = folder.parent / CHECKPOINT_DIR / STATE_FILE
    return TrainState.load(state).history if state.is_file() else []


def _network_row(
    architecture: str,
    loss: str,
    result: dict[str, Any],
    history: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    points = curve(history)
    return _row(
        architecture,
        result,
        loss=loss,
        **extra,
        epoch_seconds=epoch_phases(history),
        time_to_quality=time_to_quality(points),
        curve=points,
    )


def run_dataset(
    key: str,
    epochs: int | None,
    variants: list[tuple[str, str]],
    models: dict[str, str],
    threads: int,
    skip: set[str],
) -> list[dict[str, Any]]:
    from recops_trainer.config import parse_config
    from recops_trainer.data.sources import load_source
    from recops_trainer.data.split import leave_one_out
    from recops_trainer.evaluation.evaluator import evaluate
    from recops_trainer.evaluation.scoring import model_scorer
    from recops_trainer.model.baselines import Markov, Popularity
    from recops_trainer.model.folder import load_model
    from recops_trainer.runs.train import run_training

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
    for architecture, loss in variants:
        name = _key(key, architecture, loss)
        if name in skip:
            continue
        folder = models.get(name)
        if folder:
            loaded = load_model(Path(folder))
            if loaded.data_manifest.get("hash") != snapshot.hash:
                raise SystemExit(f"{folder} was trained on other data than {key}")
            result = evaluate(split, model_scorer(loaded.model), maxlen=loaded.model.shape.maxlen)
            info = loaded.metrics
            history = _history_of(Path(folder))
            # A run still training has no final metrics yet: its history says how far it is.
            seconds = info.get("train_seconds", sum(h["seconds"] for h in history))
            rows.append(
                _network_row(
                    architecture,
                    loss,
                    result,
                    history,
                    train_seconds=round(float(seconds), 1),
                    epochs=info.get("epochs", len(history) or None),
                    best_epoch=info.get("best_epoch"),
                    # Relative to the repository, else the folder's own name: no machine path.
                    source=_shown(folder),
                )
            )
            continue
        config = variant_config(key, architecture, loss, epochs)
        config["training"] |= {"threads": threads}
        outcome = run_training(parse_config(config))
        rows.append(
            _network_row(
                architecture,
                loss,
                outcome.test,
                outcome.state.history,
                train_seconds=round(outcome.seconds, 1),
                epochs=outcome.state.epoch,
                best_epoch=outcome.state.best_epoch,
            )
        )
    for row in rows:
        row["dataset"] = key
        row["dataset_hash"] = snapshot.hash[:12]
    return rows


def _identity(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["dataset"], row["model"], row.get("loss", "bce" if "epochs" in row else "")


def _minutes(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "not reached"
    wall = f", wall {cell['wall_s'] / 60:.1f}" if cell.get("wall_s") is not None else ""
    return f"{cell['train_s'] / 60:.1f} min{wall} (epoch {cell['epoch']})"


def plot_curves(rows: list[dict[str, Any]], path: Path, hardware: dict[str, Any]) -> None:
    """Validation NDCG@10 (both protocols) against training minutes, with the milestones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for protocol, axis in zip(("sampled", "full"), axes, strict=True):
        for row in rows:
            if not row.get("curve"):
                continue
            x = [p["train_s"] / 60 for p in row["curve"]]
            y = [p[f"{protocol}_ndcg@10"] for p in row["curve"]]
            axis.plot(x, y, marker=".", label=f"{row['dataset']} {row['model']} {row['loss']}")
        for milestone_protocol, level in MILESTONES:
            if milestone_protocol == protocol:
                axis.axhline(level, linestyle=":", linewidth=1, color="grey")
        axis.set_xlabel("training minutes (epochs only)")
        axis.set_title(f"validation {protocol} NDCG@10")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle(
        f"{hardware['processor']}, {hardware['cpus']} CPUs, "
        f"{hardware['torch_threads']} torch threads (shared machine: timings are noisy)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-1m")
    parser.add_argument("--epochs", default="", help="per dataset, e.g. ml-100k=100,ml-1m=200")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="ARCH:LOSS,...")
    parser.add_argument("--model", action="append", default=[], help="DATASET:ARCH[:LOSS]=DIR")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--skip", action="append", default=[], help="DATASET:ARCH[:LOSS] not to run"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep rows already in the JSON that this run lacks"
    )
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(args.threads)
    epochs = {k: int(v) for k, v in _pairs(args.epochs).items()}
    models: dict[str, str] = {}
    for item in args.model:
        models.update({_normalise(k): v for k, v in _pairs(item).items()})
    variants = [
        (arch, loss) for arch, loss in (v.split(":", 1) for v in args.variants.split(",") if v)
    ]
    # A model folder named on the command line is a row even when --variants omits it.
    for name in models:
        _dataset, arch, loss = name.split(":")
        if (arch, loss) not in variants:
            variants.append((arch, loss))
    skip = {_normalise(s) for s in args.skip}
    rows: list[dict[str, Any]] = []
    wanted = args.datasets.split(",")
    for key in wanted:
        rows += run_dataset(key, epochs.get(key), variants, models, args.threads, skip)
    if args.keep and RESULTS.is_file():
        done = {_identity(r) for r in rows}
        kept = json.loads(RESULTS.read_text()).get("rows", [])
        rows = [r for r in kept if _identity(r) not in done] + rows
    for row in rows:
        if "epochs" in row:
            row.setdefault("loss", "bce")
    order = list(DATASETS)
    rows.sort(
        key=lambda r: (order.index(r["dataset"]), "epochs" in r, r["model"], r.get("loss", ""))
    )

    console = Console(width=160)
    table = Table(title="Offline quality (test split; never compare across protocols)")
    sampled = ("sampled NDCG@10", "sampled HR@10")
    full = ("full NDCG@10", "full HR@10", "full MRR")
    for column in ("dataset", "model", "loss", *sampled, *full, "epochs", "train s"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["dataset"],
            row["model"],
            row.get("loss", ""),
            f"{row['sampled_ndcg@10']:.4f}",
            f"{row['sampled_hr@10']:.4f}",
            f"{row['full_ndcg@10']:.4f}",
            f"{row['full_hr@10']:.4f}",
            f"{row['full_mrr']:.4f}",
            str(row.get("epochs", "")),
            str(row["train_seconds"]),
        )
    console.print(table)
    hardware = _hardware(args.threads)
    timed = [r for r in rows if r.get("time_to_quality")]
    if timed:
        ttq = Table(title="Time to quality (validation NDCG@10; training minutes, epochs only)")
        for column in ("dataset", "model", "loss", *(f"{p} >= {v:.2f}" for p, v in MILESTONES)):
            ttq.add_column(column)
        for row in timed:
            cells = [_minutes(cell) for cell in row["time_to_quality"].values()]
            ttq.add_row(row["dataset"], row["model"], row["loss"], *cells)
        console.print(ttq)
        plot_curves(timed, CURVE, hardware)
        print(f"wrote {CURVE.relative_to(REPO)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "protocols": {
            "sampled": "test item vs 100 uniformly drawn items the user never interacted with",
            "full": "test item vs every item, the user's history excluded",
        },
        "time_to_quality": "first validation (all users' validation items) at or above "
        "each NDCG@10 milestone; train_s sums the epochs' seconds, wall_s adds validations "
        "and checkpoints (absent for histories without it)",
        "hardware": hardware,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
