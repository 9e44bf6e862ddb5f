"""How the operator copes with many RecModels: 200 applied at once against an emulated API.

The operator runs as its own process (`recops operator run --server ...`), so its peak
memory (VmHWM) is its own. Baseline, measured in the same run: one RecModel on an
idle operator. "Reconciled" means the RecModel's TrainingRun exists, its RayJob exists and
the RecModel's status says Training.

    .venv/bin/python benchmarks/operator_scale.py [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock
from rich.console import Console
from rich.table import Table

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient, KubeConnection

# The emulated API server and the manifests are the tests' harness (recops_testkit), not
# part of the operator. A benchmark runs as a script, so its own folder leads sys.path, not
# the harness's import root: the one path this benchmark adds.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object

NS = "scale"
RESULTS = Path(__file__).parent / "results" / "operator_scale.json"


def recmodel(name: str) -> dict[str, Any]:
    spec = {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": "cpu-onnxruntime"}, {"name": "cpu-openvino"}],
    }
    return custom_object("RecModel", name, NS, spec)


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (the operator's own work, not the emulator's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def reconciled(kube: KubeClient, names: list[str]) -> int:
    rms = {o["metadata"]["name"]: o for o in await kube.list(res.RECMODELS, NS)}
    jobs = {o["metadata"]["name"] for o in await kube.list(res.RAYJOBS, NS)}
    return sum(
        1
        for n in names
        if (rms.get(n, {}).get("status") or {}).get("phase") == "Training" and f"{n}-g1-a1" in jobs
    )


async def apply_and_wait(kube: KubeClient, names: list[str], timeout: float) -> float:
    start = time.perf_counter()
    for name in names:
        await kube.create(recmodel(name))
    deadline = start + timeout
    while (done := await reconciled(kube, names)) < len(names):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {done}/{len(names)} reconciled after {timeout} s")
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


async def main(count: int, timeout: float) -> dict[str, Any]:
    async with (
        ApiServerEmulator() as api,
        kmock.Server(api),
        KubeClient(KubeConnection(server=str(api.url))) as kube,
    ):
        env = {
            **os.environ,
            "RECOPS_OPERATOR_STANDALONE": "true",
            "RECOPS_OPERATOR_LIVENESS_ENDPOINT": "",
            "RECOPS_OPERATOR_LOG_FORMAT": "plain",
            "RECOPS_OPERATOR_RESYNC_INTERVAL": "10",
        }
        log = Path(tempfile.mkdtemp(prefix="recops-bench-")) / "operator.log"
        exe = Path(sys.executable).parent / "recops"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(exe), "operator", "run", "--server", str(api.url)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # Ready when it has reconciled one RecModel: the baseline.
            baseline_s = await apply_and_wait(kube, ["baseline"], timeout=120)
            baseline_rss = rss_kib(proc.pid, "VmRSS")
            names = [f"rm-{i:03d}" for i in range(count)]
            cpu_before = cpu_seconds(proc.pid)
            scale_s = await apply_and_wait(kube, names, timeout=timeout)
            cpu_scale = cpu_seconds(proc.pid) - cpu_before
            await asyncio.sleep(12)  # one full resync period over every object
            peak = rss_kib(proc.pid, "VmHWM")
            after = rss_kib(proc.pid, "VmRSS")
            if proc.poll() is not None:
                raise RuntimeError(f"the operator exited; see {log}")
        finally:
            proc.terminate()
            proc.wait(30)
        return {
            "count": count,
            "baseline_one_recmodel_s": round(baseline_s, 2),
            "baseline_rss_mib": round(baseline_rss / 1024, 1),
            "reconcile_all_s": round(scale_s, 2),
            "per_recmodel_ms": round(1000 * scale_s / count, 1),
            "operator_cpu_s": round(cpu_scale, 2),
            "peak_rss_mib": round(peak / 1024, 1),
            "rss_after_resync_mib": round(after / 1024, 1),
            "objects_in_api": len(list(api.objects)),
            "operator_log": str(log),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    result = asyncio.run(main(args.count, args.timeout))
    table = Table(title=f"Operator scale: {args.count} RecModels against an emulated API server")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("baseline: 1 RecModel reconciled (s)", result["baseline_one_recmodel_s"]),
        ("baseline: operator RSS, 1 RecModel (MiB)", result["baseline_rss_mib"]),
        (f"{args.count} RecModels reconciled (s)", result["reconcile_all_s"]),
        ("per RecModel (ms)", result["per_recmodel_ms"]),
        ("operator CPU time for them (s)", result["operator_cpu_s"]),
        ("operator peak RSS (MiB)", result["peak_rss_mib"]),
        ("operator RSS after a resync pass (MiB)", result["rss_after_resync_mib"]),
        ("objects in the API", result["objects_in_api"]),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({k: v for k, v in result.items() if k != "operator_log"}, indent=2) + "\n"
    )
