"""The engines under test, built from the model folder, and their speed without a server."""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from untrained_model import untrained_model

from serving_bench import REPO


def model_folder(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The trained model folder, or an untrained one of the same shape on the same data."""
    if args.model.is_dir():
        where = args.model.resolve()
        shown = where.relative_to(REPO) if where.is_relative_to(REPO) else Path(where.name)
        metrics = json.loads((args.model / "metrics.json").read_text() or "{}")
        epoch = metrics.get("best_epoch")
        return args.model, f"trained ({shown}{f', best epoch {epoch}' if epoch else ''})"
    folder = untrained_model(args.data, work / "untrained-model")
    return folder, "untrained, ML-1M shape (2 blocks, width 100, history 200, 3,416 items)"


def build_engines(args: argparse.Namespace, work: Path) -> tuple[dict[str, Path], str]:
    from recops_runtime.engines import BuildOptions, build_engine
    from recops_trainer.compile.export import export_bundle
    from recops_trainer.model.folder import weights_sha256

    model, label = model_folder(args, work)
    # A training run may still replace its model folder: work on a copy, and cache engines
    # per model weights, so a retrained model is compiled afresh.
    staging = work / "models" / ".copying"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model, staging)
    key = weights_sha256(staging)[:12]
    model = work / "models" / key
    if model.is_dir():
        shutil.rmtree(staging)
    else:
        staging.rename(model)
    engines = {t: work / "engines" / key / t for t in args.targets}
    missing = [t for t, path in engines.items() if not path.is_dir()]
    if missing:
        bundle = export_bundle(
            model,
            work / "export" / key,
            data=str(args.data),
            parity_users=200,
            calibration_users=64,
            edge_maxlen=None,
        )
        options = BuildOptions(parity_users=200, latency_batches=(1,), latency_budget_s=0.2)
        for target in missing:
            build_engine(bundle, target, engines[target], options)
    return engines, label


def histories(args: argparse.Namespace, maxlen: int, count: int) -> list[list[str]]:
    from recops_runtime.tools.sequences import read_sequences

    rng = np.random.default_rng(0)
    sequences = read_sequences(args.data, max_users=args.max_users)
    picked = rng.choice(len(sequences), size=count)
    return [list(sequences[i].items[:-1][-maxlen:]) for i in picked]


def engine_inputs(engine_dir: Path, args: argparse.Namespace, maxlen: int) -> tuple[Any, Any]:
    """User ids and padded history rows of 512 held-out histories, as the service builds them."""
    from recops_contracts.engine_manifest import ID_MAPS_FILE

    items = json.loads((engine_dir / ID_MAPS_FILE).read_text())["items"]
    index = {item: i for i, item in enumerate(items, 1)}
    rows = []
    for history in histories(args, maxlen, 512):
        known = [index[i] for i in history if i in index][-maxlen:]
        row = np.zeros(maxlen, np.int64)
        row[maxlen - len(known) :] = known
        rows.append(row)
    return np.ones(len(rows), np.int64), np.stack(rows)


def raw_engine(engine_dir: Path, args: argparse.Namespace, threads: int) -> list[dict[str, float]]:
    """Users/s of the engine alone, on the same held-out histories the load replays."""
    from recops_runtime.engines import load_engine

    engine = load_engine(engine_dir, threads)
    users, matrix = engine_inputs(engine_dir, args, engine.manifest.input_spec.maxlen)
    results = []
    for batch in (1, 8, 16, 32):
        engine.score(users[:batch], matrix[:batch])
        done, started, i, cpu = 0, time.perf_counter(), 0, time.process_time()
        while time.perf_counter() - started < args.raw_seconds:
            lo = (i * batch) % (len(matrix) - batch)
            engine.score(users[lo : lo + batch], matrix[lo : lo + batch])
            done, i = done + batch, i + 1
        elapsed = time.perf_counter() - started
        results.append(
            {
                "threads": threads,
                "batch": batch,
                "users_per_s": done / elapsed,
                "ms_per_batch": 1000 * elapsed / i,
                "cpu_ms_per_user": 1000 * (time.process_time() - cpu) / done,
            }
        )
    engine.close()
    return results


def raw_parallel(
    engine_dir: Path, args: argparse.Namespace, instances: int, batch: int
) -> dict[str, float]:
    """Users/s of ``instances`` single-threaded engines scoring side by side."""
    from recops_runtime.engines import load_engine

    engines = [load_engine(engine_dir, 1) for _ in range(instances)]
    users, matrix = engine_inputs(engine_dir, args, engines[0].manifest.input_spec.maxlen)
    done = [0] * instances
    start = threading.Barrier(instances + 1)

    def score(n: int) -> None:
        engine = engines[n]
        engine.score(users[:batch], matrix[:batch])
        start.wait()
        i, until = n * 97, time.perf_counter() + args.raw_seconds
        while time.perf_counter() < until:
            lo = (i * batch) % (len(matrix) - batch)
            engine.score(users[lo : lo + batch], matrix[lo : lo + batch])
            done[n], i = done[n] + batch, i + 1

    threads = [threading.Thread(target=score, args=(n,)) for n in range(instances)]
    for thread in threads:
        thread.start()
    start.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for engine in engines:
        engine.close()
    total = sum(done)
    return {
        "instances": instances,
        "threads": 1,
        "batch": batch,
        "users_per_s": total / elapsed,
        "ms_per_batch": 1000 * elapsed * instances * batch / total,
        "cpu_ms_per_user": 1000 * (time.process_time() - cpu) / total,
    }
