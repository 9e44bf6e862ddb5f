"""Data at scale: prepare and train one epoch on synthetic ML-1B-format sets, 10x apart.

For each size, a synthetic ``ml-20mx16x32.tar`` (16 train + 16 test npz shards, the
GroupLens format) is written, prepared into per-user Parquet rows, and trained for one
epoch on Ray Train with the streaming Ray Data pipeline (2 workers). Baseline in the same
run: the in-memory path (one process holds every sequence) on the smallest set, where it
still fits. Each phase runs in its own process, so every peak RSS is that phase's own:
the driver's from ``ru_maxrss``, each Ray worker's sampled every 0.5 s with psutil
(RSS, and USS, which leaves out the shared object-store pages a worker has mapped).

The model is SASRec (no user table), so it is the same size at every scale and any
growth of memory is the data pipeline's.

    .venv/bin/python benchmarks/scale.py [--pairs 10000000 100000000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
MEAN_LENGTH = 200
ITEMS = 50_021  # prime: every stride of the synthetic walk gives distinct items
WORKERS = 2
MODEL = {
    "architecture": "sasrec",
    "userDim": 0,
    "itemDim": 32,
    "maxlen": 30,
    "numBlocks": 1,
    "batchSize": 128,
    "epochs": 1,
}
TRAINING = {"evalEvery": 1, "evalUsers": 1000}


def _config(workers: int, threads: int) -> dict[str, Any]:
    return {
        "dataset": {"format": "movielens-1b"},
        "model": MODEL,
        "resources": {"workers": workers, "cpusPerWorker": 1},
        "training": TRAINING | {"threads": threads},
    }


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildSampler:
    """Peak RSS of every process below this one (Ray's raylet and workers), by pid, and
    peak USS: RSS counts the pages of Ray's shared object store a worker has mapped (its
    blocks are read zero-copy), USS only the worker's own memory."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peaks: dict[int, tuple[str, float]] = {}
        self.uss: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            for child in me.children(recursive=True):
                try:
                    name = " ".join(child.cmdline())[:80] or child.name()
                    memory = child.memory_full_info()
                except psutil.Error:
                    continue
                _, peak = self.peaks.get(child.pid, (name, 0.0))
                self.peaks[child.pid] = (name, max(peak, memory.rss / (1 << 20)))
                self.uss[child.pid] = max(self.uss.get(child.pid, 0.0), memory.uss / (1 << 20))

    def workers(self) -> dict[str, Any]:
        train = [p for n, p in self.peaks.values() if "RayTrainWorker" in n]
        train_uss = [self.uss[pid] for pid, (n, _) in self.peaks.items() if "RayTrainWorker" in n]
        data = [
            p
            for n, p in self.peaks.values()
            if n.startswith("ray::") and "RayTrainWorker" not in n and "IDLE" not in n
        ]
        return {
            "train_workers_mb": sorted(round(p) for p in train),
            "train_workers_uss_mb": sorted(round(p) for p in train_uss),
            "data_workers_max_mb": round(max(data, default=0.0)),
            "processes": len(self.peaks),
        }


# Phases, each run in a child process (``--phase``).


def phase_write(archive: Path, pairs: int) -> dict[str, Any]:
    from recops_trainer.data.synthetic_archives import SyntheticSize, pairs_of, write_ml1b_tar

    size = SyntheticSize(users=max(1, pairs // MEAN_LENGTH), items=ITEMS, mean_length=MEAN_LENGTH)
    started = time.perf_counter()
    write_ml1b_tar(archive, size)
    return {"pairs": pairs_of(size), "seconds": time.perf_counter() - started}


def phase_prepare(archive: Path, prepared: Path) -> dict[str, Any]:
    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.data.prepared.writer import prepare

    source = DatasetSource(format=DatasetFormat.MOVIELENS_1B)
    manifest = prepare(source, archive, prepared, use_ray=False)
    prep = manifest["preparation"]
    return {
        "pairs": prep["pairs_read"],
        "seconds": prep["seconds"],
        "pairs_per_s": prep["pairs_per_second"],
        "buckets": prep["buckets"],
        "users": manifest["stats"]["users"],
        "driver_peak_rss_mb": round(_peak_rss_mb()),
    }


def phase_streaming(prepared: Path, work: Path) -> dict[str, Any]:
    from recops_trainer.config import TrainConfig
    from recops_trainer.distributed.ray_train import ray_session
    from recops_trainer.distributed.streaming import fit_streaming

    config = TrainConfig.model_validate(_config(WORKERS, threads=1))
    with ChildSampler() as sampler, ray_session(num_cpus=WORKERS + 1):
        started = time.perf_counter()
        state, metrics = fit_streaming(config, prepared, str(work / "ray"), name="scale")
        wall = time.perf_counter() - started
    row = state.history[-1]
    return {
        "sequences": row["sequences"],
        "epoch_seconds": row["seconds"],
        "sequences_per_s": row["sequences"] / row["seconds"],
        "wall_seconds": wall,
        "loss": row["loss"],
        "val_ndcg@10": row["val"]["sampled"]["ndcg@10"],
        "driver_peak_rss_mb": round(_peak_rss_mb()),
        "rank0_reported_peak_rss_mb": round(metrics.get("worker_peak_rss_mb", 0.0)),
        **sampler.workers(),
    }


def phase_in_memory(prepared: Path) -> dict[str, Any]:
    import numpy as np

    from recops_trainer.config import TrainConfig
    from recops_trainer.data.prepared.reader import to_snapshot
    from recops_trainer.data.split import leave_one_out
    from recops_trainer.training.loop import fit

    config = TrainConfig.model_validate(_config(1, threads=WORKERS))
    started = time.perf_counter()
    split = leave_one_out(to_snapshot(prepared))
    load = time.perf_counter() - started
    _, state = fit(split, config.model, config.training)
    row = state.history[-1]
    eligible = int(np.sum([len(s) > 1 for s in split.train]))
    sequences = (eligible // config.model.batch_size) * config.model.batch_size
    return {
        "sequences": sequences,
        "load_seconds": load,
        "epoch_seconds": row["seconds"],
        "sequences_per_s": sequences / row["seconds"],
        "loss": row["loss"],
        "val_ndcg@10": row["val"]["sampled"]["ndcg@10"],
        "driver_peak_rss_mb": round(_peak_rss_mb()),
    }


def run_phase(args: argparse.Namespace) -> None:
    work = Path(args.work)
    if args.phase == "write":
        out = phase_write(Path(args.archive), args.pairs[0])
    elif args.phase == "prepare":
        out = phase_prepare(Path(args.archive), Path(args.prepared))
    elif args.phase == "streaming":
        out = phase_streaming(Path(args.prepared), work)
    else:
        out = phase_in_memory(Path(args.prepared))
    print("RESULT " + json.dumps(out), flush=True)


def child(console: Console, phase: str, **kw: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase]
    for key, value in kw.items():
        command += [
            f"--{key}",
            *([str(v) for v in value] if isinstance(value, list) else [str(value)]),
        ]
    with console.status(f"{phase} {kw.get('pairs', '')}"):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
        console.print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"phase {phase} failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    console.print(f"{phase} {kw.get('pairs', '')}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--work", default=None, help="Scratch folder (removed at the end).")
    parser.add_argument("--phase", choices=("write", "prepare", "streaming", "in-memory"))
    parser.add_argument("--archive")
    parser.add_argument("--prepared")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    console = Console(width=180)
    work = Path(args.work or tempfile.mkdtemp(prefix="recops-scale-"))
    rows: list[dict[str, Any]] = []
    try:
        for index, pairs in enumerate(sorted(args.pairs)):
            archive, prepared = work / f"ml1b-{pairs}.tar", work / f"prepared-{pairs}"
            written = child(console, "write", archive=archive, pairs=[pairs], work=work)
            prep = child(console, "prepare", archive=archive, prepared=prepared, work=work)
            archive.unlink()
            if index == 0:
                memory = child(console, "in-memory", prepared=prepared, work=work)
                rows.append(
                    {"pairs": written["pairs"], "path": "in-memory", "prepare": prep} | memory
                )
            stream = child(console, "streaming", prepared=prepared, work=work)
            rows.append({"pairs": written["pairs"], "path": "streaming", "prepare": prep} | stream)
            shutil.rmtree(prepared, ignore_errors=True)
            shutil.rmtree(work / "ray", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(console, rows)
    result = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "model": MODEL,
        "workers": WORKERS,
        "mean_length": MEAN_LENGTH,
        "items": ITEMS,
        "rows": rows,
    }
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.results}")


def print_table(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(title="Synthetic ML-1B format: prepare, then one epoch (SASRec, 2 cores)")
    columns = (
        "pairs",
        "path",
        "prepare pairs/s",
        "prepare peak RSS MB",
        "train sequences/s",
        "driver peak RSS MB",
        "train workers peak RSS MB",
        "train workers peak USS MB",
        "data tasks peak RSS MB",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        streaming = row["path"] == "streaming"
        table.add_row(
            f"{row['pairs']:,}",
            row["path"],
            f"{row['prepare']['pairs_per_s']:,}",
            f"{row['prepare']['driver_peak_rss_mb']:,}",
            f"{row['sequences_per_s']:,.0f}",
            f"{row['driver_peak_rss_mb']:,}",
            ", ".join(f"{v:,}" for v in row["train_workers_mb"]) if streaming else "-",
            ", ".join(f"{v:,}" for v in row["train_workers_uss_mb"]) if streaming else "-",
            f"{row['data_workers_max_mb']:,}" if streaming else "-",
        )
    console.print(table)


if __name__ == "__main__":
    main()
