"""Ingest throughput: feedback logs of a million events into a new ML-1M snapshot.

The logs are written in the runtime's format (one served list per request, then clicks,
watches and impressions on it, a share of them repeated, a torn line per segment), spread
over several pods' folders; the parent is the ML-1M snapshot. Baseline in the same run:
reading and parsing the same lines alone (json.loads), the floor of any ingest.

    .venv/bin/python benchmarks/ingest.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from recops_contracts.training import DatasetSource
from recops_trainer.data.ingest import ingest
from recops_trainer.data.snapshot import write_snapshot
from recops_trainer.data.sources import load_source

ROOT = Path(__file__).resolve().parents[1]
ML1M = ROOT.parent / "shared" / "data" / "ml-1m" / "ml-1m.txt.gz"
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
PODS = 4
EVENTS = ("click", "watch", "rating", "impression")


def write_logs(root: Path, events: int, users: list[str], items: list[str], seed: int) -> int:
    """Writes about ``events`` feedback records (and their served lists); returns the lines."""
    rng = np.random.default_rng(seed)
    requests = events // 3
    lines = 0
    per_pod = -(-requests // PODS)
    for pod in range(PODS):
        folder = root / f"pod-{pod}"
        folder.mkdir(parents=True)
        out: list[str] = []
        for n in range(pod * per_pod, min(requests, (pod + 1) * per_pod)):
            ts = 1.7e9 + n * 0.01
            user = users[rng.integers(len(users))]
            listed = [items[i] for i in rng.integers(len(items), size=10)]
            request = f"p{pod}-{n}"
            out.append(
                json.dumps(
                    {
                        "kind": "recommendation",
                        "ts": ts,
                        "request_id": request,
                        "user_id": user,
                        "version": "stable",
                        "target": "cpu-onnxruntime",
                        "model_version": "1",
                        "items": listed,
                        "fallback": None,
                        "history_source": "request",
                    }
                )
            )
            for k in range(3):
                record = json.dumps(
                    {
                        "kind": "feedback",
                        "ts": ts + 5 + k,
                        "request_id": request,
                        "user_id": user,
                        "version": "stable",
                        "item_id": listed[k],
                        "event": EVENTS[int(rng.integers(len(EVENTS)))],
                        "value": 0.0,
                        "recommended": True,
                    }
                )
                out.append(record)
                if rng.random() < 0.02:  # a retried delivery
                    out.append(record)
        for segment in range(0, len(out), 100_000):
            chunk = out[segment : segment + 100_000]
            text = "\n".join(chunk) + '\n{"kind": "feedback", "ts"'  # torn by a crash
            (folder / f"{segment // 100_000:04d}.jsonl").write_text(text)
            lines += len(chunk) + 1
    return lines


def parse_only(root: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    for segment in sorted(root.rglob("*.jsonl")):
        with segment.open("rb") as lines:
            for line in lines:
                try:
                    json.loads(line)
                    count += 1
                except json.JSONDecodeError:
                    pass
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console()
    source = DatasetSource(format="sasrec", uri=str(ML1M))
    with tempfile.TemporaryDirectory(prefix="recops-ingest-") as tmp:
        work = Path(tmp)
        snapshot = load_source(source)
        write_snapshot(snapshot, work / "parent")
        with console.status(f"writing logs of about {args.events:,} events"):
            lines = write_logs(
                work / "logs", args.events, snapshot.user_ids, snapshot.item_ids, args.seed
            )
        parsed, parse_s = parse_only(work / "logs")
        with console.status("ingesting"):
            started = time.perf_counter()
            new, report = ingest(work / "parent", work / "logs", work / "new")
            ingest_s = time.perf_counter() - started
        feedback = report.feedback
        rows: list[dict[str, Any]] = [
            {"step": "parse only (json.loads, baseline)", "lines": parsed, "seconds": parse_s},
            {"step": "recops data ingest", "lines": report.lines, "seconds": ingest_s},
        ]
    table = Table(title=f"Ingest of {lines:,} log lines ({feedback:,} feedback events)")
    for column in ("step", "lines", "seconds", "lines/s"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in rows:
        row["lines_per_s"] = row["lines"] / row["seconds"]
        table.add_row(
            row["step"], f"{row['lines']:,}", f"{row['seconds']:.1f}", f"{row['lines_per_s']:,.0f}"
        )
    console.print(table)
    counts = report.as_dict()
    console.print(counts)
    result = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "events_requested": args.events,
        "rows": rows,
        "feedback_events_per_s": report.feedback / ingest_s,
        "report": counts,
        "snapshot": {
            "parent_interactions": snapshot.manifest["stats"]["interactions"],
            "interactions": new.manifest["stats"]["interactions"],
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
