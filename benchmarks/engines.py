"""Engines benchmark: every CPU target beside cpu-torch on the same model, in one run.

1. Exports the model once and builds every CPU target from that bundle (each build runs
   its parity gate against cpu-torch on real users of the evaluation split).
2. Measures all engines interleaved (round after round, a few calls each, in a shuffled
   order), so a change of load on the machine falls on every engine alike; every engine
   gets the same intra-op thread count and the same real histories.
3. Prints latency p50/p99 at each batch size, throughput, and each engine's speed-up over
   cpu-torch (the model's own forward as a torch.export program). Two more torch rows
   show where the speed-up comes from: the trainer's eager module, and the same serving
   graph the compiled targets run, executed eagerly by torch.

4. With ``--emulate-cpu EPYC-Rome`` (x86 hosts with qemu-user), scores each int8 engine's
   parity users again on that emulated processor (AVX2, no AVX-512, no VNNI) and reports
   its parity there beside the build host's: int8 kernels differ by instruction set.

The model is the ML-1M SSE-PT folder (``--model``, default runs/ml1m-ssept/model).
Without one it builds an untrained network of the same shape on the same data, which
costs the same to run (its parity numbers are then those of near-tied random scores;
the JSON says which model was used). Writes benchmarks/results/engines.json.

    python benchmarks/engines.py [--threads 1] [--rounds 20] [--model DIR] [--targets ...]
        [--emulate-cpu EPYC-Rome]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from untrained_model import untrained_model

from recops_runtime.engines.targets import CPU_TARGETS

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "engines.json"
DEFAULT_DATA = (
    Path(os.environ.get("RECOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "ml-1m"
    / "ml-1m.txt.gz"
)
Score = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _shown(path: Path) -> str:
    """A path as the results may show it: relative to the repository, else its name."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved.name)


def model_folder(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    if args.model.is_dir() and not args.untrained:
        return args.model, f"trained ({_shown(args.model)})"
    label = "untrained, ML-1M shape (2 blocks, 50+50 dims, history 200, 3,416 items)"
    args.data = args.data or DEFAULT_DATA
    return untrained_model(args.data, work / "untrained-model"), label


def torch_rows(model_dir: Path, threads: int) -> dict[str, Score]:
    """The trainer's eager module and the serving graph run eagerly, for attribution."""
    import torch

    from recops_trainer.compile.serving_graph import ServingGraph
    from recops_trainer.model.folder import load_model

    torch.set_num_threads(threads)
    model = load_model(model_dir).model.eval()
    graph = ServingGraph(model)
    from recops_runtime.engines.padding import trim_leading_padding

    def eager(user_ids: np.ndarray, history: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(user_ids), torch.from_numpy(history)).numpy()

    def serving(user_ids: np.ndarray, history: np.ndarray) -> np.ndarray:
        trimmed = np.ascontiguousarray(trim_leading_padding(history))
        with torch.inference_mode():
            return graph(torch.from_numpy(user_ids), torch.from_numpy(trimmed)).numpy()

    return {"torch eager (model.forward)": eager, "torch eager (serving graph)": serving}


def emulated_parity(
    cpu: str, engine_dirs: dict[str, Path], bundle: Any, users: int, threads: int
) -> dict[str, dict[str, Any]]:
    """Each engine's parity with cpu-torch when it runs on the emulated processor ``cpu``."""
    import shutil
    import subprocess
    import sys

    from recops_runtime.engines import score_users
    from recops_runtime.engines.torch_engine import ProgramScorer

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise SystemExit("--emulate-cpu needs qemu-x86_64 (Debian's qemu-user)")
    reference = ProgramScorer(bundle.reference(), threads)
    out = {}
    for target, folder in engine_dirs.items():
        scores = folder.parent / f".{target}-{cpu}.npy"
        proc = subprocess.run(
            [
                qemu,
                "-cpu",
                cpu,
                sys.executable,
                "-m",
                score_users.__name__,
                str(folder),
                str(bundle.root),
                str(users),
                str(scores),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{target} on {cpu}: {proc.stderr[-2000:]}")
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        result = score_users.parity_of(np.load(scores), folder, bundle, users, reference)
        out[target] = {"cpu": cpu, "isa": seen["isa"], **result.model_dump()}
    return out


def interleaved(
    scorers: dict[str, tuple[Score, int]],
    users: Any,
    batch: int,
    rounds: int,
    calls: int,
) -> dict[str, dict[str, float]]:
    """p50/p99 ms and users/s per scorer; ``scorers`` maps name -> (score, history length)."""
    times: dict[str, list[float]] = {name: [] for name in scorers}
    cpu: dict[str, list[float]] = {name: [] for name in scorers}
    n = len(users)
    cursor = 0
    order = list(scorers)
    for score, maxlen in scorers.values():  # warm-up, also shape caches
        for _ in range(3):
            score(users.user_ids[:batch], np.ascontiguousarray(users.history[:batch, -maxlen:]))
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            score, maxlen = scorers[name]
            for _ in range(calls):
                index = (np.arange(batch) + cursor) % n
                cursor += batch
                user_ids = users.user_ids[index]
                history = np.ascontiguousarray(users.history[index][:, -maxlen:])
                start, start_cpu = time.perf_counter(), time.process_time()
                score(user_ids, history)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    out = {}
    for name, values in times.items():
        seconds = np.asarray(values)
        out[name] = {
            "p50_ms": float(np.percentile(seconds, 50) * 1e3),
            "p99_ms": float(np.percentile(seconds, 99) * 1e3),
            "users_per_second": float(batch * len(seconds) / seconds.sum()),
            # CPU seconds of this process per call: what the engine costs when other
            # processes take the cores (wall time then also counts waiting for one).
            "cpu_ms_mean": float(np.mean(cpu[name]) * 1e3),
            "calls": len(values),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "runs" / "ml1m-ssept" / "model")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the model's dataset when no snapshot lies beside it (default for the "
        "untrained model: ML-1M from the shared data)",
    )
    parser.add_argument(
        "--untrained", action="store_true", help="an untrained network of ML-1M's shape"
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, all engines")
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument(
        "--targets",
        default=",".join(CPU_TARGETS),
        help="comma-separated; on a GPU node add gpu-onnxruntime-cuda,gpu-tensorrt",
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--parity-users", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None, help="keep the engines here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the bundle and engines in --work"
    )
    parser.add_argument(
        "--emulate-cpu",
        default=None,
        help="also measure int8 parity on this QEMU processor model (e.g. EPYC-Rome: AVX2 only)",
    )
    parser.add_argument(
        "--emulated-users",
        type=int,
        default=300,
        help="parity users on the emulated processor (emulation is about 1,000 times slower)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rich.console import Console
    from rich.table import Table

    from recops_runtime.engines import BuildOptions, ParityError, build_engine, load_engine
    from recops_runtime.engines.bundle import ExportBundle
    from recops_runtime.engines.cpu import host_cpu
    from recops_runtime.engines.manifest import verify_engine_dir
    from recops_trainer.compile.export import export_bundle

    random.seed(0)
    load_at_start = os.getloadavg()
    console = Console(width=220)
    work = args.work or Path(tempfile.mkdtemp(prefix="recops-bench-engines-"))
    model_dir, label = model_folder(args, work)
    console.print(f"model: {label}; threads per engine: {args.threads}")
    started = time.time()
    if args.reuse and (work / "export" / "export.json").is_file():
        bundle = ExportBundle(work / "export")
    else:
        bundle = export_bundle(
            model_dir,
            work / "export",
            data=str(args.data) if args.data else None,
            parity_users=args.parity_users,
        )
    manifests = {}
    failed: dict[str, str] = {}
    targets = ["cpu-torch", *(t for t in args.targets.split(",") if t != "cpu-torch")]
    for target in targets:
        options = BuildOptions(
            threads=args.threads,
            parity_users=args.parity_users,
            latency_batches=(),
            latency_budget_s=0.0,
        )
        t0 = time.time()
        existing = work / "engines" / target
        if args.reuse and (existing / "manifest.json").is_file():
            manifests[target] = verify_engine_dir(existing, expected_target=target)
            continue
        try:
            manifests[target] = build_engine(
                bundle, target, work / "engines" / target, options, overwrite=True
            )
        except ParityError as error:
            # Reported, not measured: a build that fails its gate ships nothing.
            failed[target] = str(error)
            console.print(f"[red]{target}: {error}[/red]")
            continue
        console.print(f"built {target} in {time.time() - t0:.1f} s")
    engines = {t: load_engine(work / "engines" / t, threads=args.threads) for t in manifests}
    scorers: dict[str, tuple[Score, int]] = {
        t: (e.score, e.manifest.input_spec.maxlen) for t, e in engines.items()
    }
    maxlen = engines["cpu-torch"].manifest.input_spec.maxlen
    for name, score in torch_rows(model_dir, args.threads).items():
        scorers[name] = (score, maxlen)
    emulated: dict[str, dict[str, Any]] = {}
    if args.emulate_cpu:
        int8 = {t: work / "engines" / t for t, m in manifests.items() if m.precision == "int8"}
        emulated = emulated_parity(
            args.emulate_cpu, int8, bundle, args.emulated_users, args.threads
        )
        console.print(f"measured int8 parity on an emulated {args.emulate_cpu}")
    users = bundle.evaluation()
    batches = [int(b) for b in args.batches.split(",")]
    latency = {}
    for batch in batches:
        calls = max(1, 64 // batch) if batch < 64 else 1
        latency[batch] = interleaved(scorers, users, batch, args.rounds, calls)
        console.print(f"measured batch {batch}")

    table = Table(
        title=f"engines on {label}, {args.threads} thread(s) each, p50 ms (x vs cpu-torch)"
    )
    table.add_column("engine")
    table.add_column("top-10 overlap")
    table.add_column("NDCG@10 change")
    if emulated:
        table.add_column(f"on {args.emulate_cpu}: overlap / NDCG change")
    for batch in batches:
        table.add_column(f"b{batch} p50 / p99")
        table.add_column(f"b{batch} x wall (cpu)")
    table.add_column(f"users/s at b{batches[-1]}")
    rows = []
    for name in scorers:
        manifest = manifests.get(name)
        parity = manifest.parity if manifest else None
        row: dict[str, Any] = {
            "engine": name,
            "parity": parity.model_dump() if parity else None,
            "precision": manifest.precision if manifest else "fp32",
            "build_options": manifest.build_options if manifest else {},
            "latency": {},
        }
        cells = [
            name,
            f"{parity.top10_overlap:.4f}" if parity else "",
            f"{parity.ndcg10_delta:+.4f}" if parity else "",
        ]
        if emulated:
            there = emulated.get(name)
            row["parity_emulated"] = there
            cells.append(
                f"{there['top10_overlap']:.4f} / {there['ndcg10_delta']:+.4f}" if there else ""
            )
        for batch in batches:
            mine, base = latency[batch][name], latency[batch]["cpu-torch"]
            ratio = base["p50_ms"] / mine["p50_ms"]
            cpu_ratio = base["cpu_ms_mean"] / mine["cpu_ms_mean"]
            row["latency"][str(batch)] = {
                **mine,
                "speedup_vs_cpu_torch": ratio,
                "cpu_speedup_vs_cpu_torch": cpu_ratio,
            }
            cells += [
                f"{mine['p50_ms']:.2f} / {mine['p99_ms']:.2f}",
                f"{ratio:.2f} ({cpu_ratio:.2f})",
            ]
        cells.append(f"{latency[batches[-1]][name]['users_per_second']:.0f}")
        table.add_row(*cells)
        rows.append(row)
    console.print(table)
    result = {
        "benchmark": "engines",
        "model": label,
        "model_dir": _shown(model_dir),
        "model_version": manifests["cpu-torch"].model_version,
        "threads_per_engine": args.threads,
        "parity_users": args.parity_users,
        "emulated_cpu": args.emulate_cpu,
        "emulated_parity_users": args.emulated_users if args.emulate_cpu else None,
        "rounds": args.rounds,
        "host": {
            "load_average_at_start": load_at_start,
            "cpu": platform.processor() or platform.machine(),
            "cpu_description": host_cpu().model_dump(),
            "int8_kernels": host_cpu().int8_kernels,
            "cores": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "seconds": time.time() - started,
        "engines": rows,
        "failed_parity": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
