"""The results as tables on the console and as a chart of throughput and p99."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for target, entry in results["targets"].items():
        best = max(r["users_per_s"] for r in entry["raw"])
        best_parallel = max((r["users_per_s"] for r in entry["raw_parallel"]), default=0.0)
        raw = Table(title=f"{target}: raw engine ({results['model']})")
        for column in ("instances", "threads", "batch", "users/s", "ms/batch", "CPU ms/user"):
            raw.add_column(column)
        for r in [*entry["raw"], *entry["raw_parallel"]]:
            raw.add_row(
                str(r.get("instances", 1)),
                str(r["threads"]),
                str(r["batch"]),
                f"{r['users_per_s']:.0f}",
                f"{r['ms_per_batch']:.2f}",
                f"{r['cpu_ms_per_user']:.2f}",
            )
        console.print(raw)
        table = Table(
            title=f"{target}: served by {results['engine_workers']} engine worker(s) x "
            f"{results['engine_threads']} thread(s), {results['event_loop']} (closed "
            "loop, load generator on the same CPUs)"
        )
        columns = ["server", "concurrency", "clicks", "recs/s", "% of raw (1 engine)"]
        if best_parallel:
            columns.append(f"% of raw ({results['engine_workers']} engines)")
        columns += ["p50 ms", "p99 ms", "errors", "server CPU ms/rec", "load gen CPU ms/rec"]
        for column in columns:
            table.add_column(column)
        for name in ("service", "ray_serve"):
            for r in entry.get(name, []):
                cells = [
                    "recops serve" if name == "service" else "Ray Serve @serve.batch",
                    str(r["concurrency"]),
                    "yes" if r.get("feedback") else "no",
                    f"{r['rps']:.0f}",
                    f"{100 * r['rps'] / best:.0f}%",
                ]
                if best_parallel:
                    cells.append(f"{100 * r['rps'] / best_parallel:.0f}%")
                cells += [
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['error_rate']:.3f}",
                    f"{r['server_cpu_ms_per_rec']:.2f}",
                    f"{r['client_cpu_ms_per_rec']:.2f}",
                ]
                table.add_row(*cells)
        console.print(table)
    echo = results["echo"]
    console.print(
        f"transport ceiling (gRPC echo server, no engine, concurrency {echo['concurrency']}): "
        f"{echo['rps']:.0f} req/s, p99 {echo['p99_ms']:.1f} ms, server CPU "
        f"{echo['server_cpu_ms_per_rec']:.2f} ms/req, load generator CPU "
        f"{echo['client_cpu_ms_per_rec']:.2f} ms/req"
    )
    console.print(
        f"load average {results['load_average_at_start']:.1f} at start, "
        f"{results['load_average_at_end']:.1f} at end, on {results['cpus']} CPUs"
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 against concurrency, per engine and server, beside the raw engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, tail) = plt.subplots(1, 2, figsize=(11, 4))
    for target, entry in results["targets"].items():
        for name, label in (("service", "recops serve"), ("ray_serve", "Ray Serve")):
            rows = [r for r in entry.get(name, []) if not r.get("feedback")]
            if not rows:
                continue
            x = [r["concurrency"] for r in rows]
            style = "-o" if name == "service" else "--s"
            rate.plot(x, [r["rps"] for r in rows], style, label=f"{label}, {target}")
            tail.plot(x, [r["p99_ms"] for r in rows], style, label=f"{label}, {target}")
        best = max(r["users_per_s"] for r in entry["raw"])
        rate.axhline(best, linestyle=":", linewidth=1, color="grey")
        rate.annotate(f"raw {target} (1 instance)", (1, best), fontsize=7, color="grey")
    for axis, title in ((rate, "recommendations/s"), (tail, "p99 latency, ms")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrency (closed loop)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    tail.set_yscale("log")
    rate.legend(fontsize=7)
    fig.suptitle(f"ML-1M SSE-PT on {results['cpus']} CPUs, load generator on the same CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
