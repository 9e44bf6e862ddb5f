"""The results as tables on the console and as a chart of throughput and p99."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)  # the table is wide; a pipe defaults to 80 columns
    for target, entry in results["targets"].items():
        best = max(r["users_per_s"] for r in entry["raw"])
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
        by_instances: dict[int, float] = {}
        for r in entry["raw_parallel"]:
            n = r["instances"]
            by_instances[n] = max(by_instances.get(n, 0.0), r["users_per_s"])
        table = Table(
            title=f"{target}: closed loop, one load generator process with up to "
            f"{results.get('connections', 1)} gRPC connections on the same CPUs"
        )
        columns = ["server", "processes x engine workers", "concurrency", "clicks", "recs/s"]
        columns += ["% of raw (1 engine)", "% of raw (as many engines)", "p50 ms", "p99 ms"]
        columns += ["errors", "server CPU ms/rec", "load gen CPU ms/rec", "load gen CPU share"]
        for column in columns:
            table.add_column(column)
        for name in ("service", "service_cached", "ray_serve"):
            for r in entry.get(name, []):
                if name != "ray_serve":
                    label, shape = "recops serve", f"{r['processes']} x {r['engine_workers']}"
                    if "cache_hit_rate" in r:
                        label += f", top-k cache ({100 * r['cache_hit_rate']:.0f}% hits)"
                    instances = r["instances"]
                else:
                    label = "Ray Serve @serve.batch"
                    shape = f"{results['engine_workers']} replicas"
                    instances = results["engine_workers"]
                same = by_instances.get(instances, best if instances == 1 else 0.0)
                cells = [
                    label,
                    shape,
                    str(r["concurrency"]),
                    "yes" if r.get("feedback") else "no",
                    f"{r['rps']:.0f}",
                    f"{100 * r['rps'] / best:.0f}%",
                    f"{100 * r['rps'] / same:.0f}%" if same else "-",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['error_rate']:.3f}",
                    f"{r['server_cpu_ms_per_rec']:.2f}",
                    f"{r['client_cpu_ms_per_rec']:.2f}",
                    f"{100 * r.get('client_cpu_share', 0.0):.0f}%",
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
        lines: dict[str, list[dict[str, Any]]] = {}
        for r in entry.get("service", []):
            if not r.get("feedback"):
                key = f"recops serve, {r['processes']} process(es)"
                lines.setdefault(key, []).append(r)
        lines["Ray Serve"] = [r for r in entry.get("ray_serve", []) if not r.get("feedback")]
        for label, rows in lines.items():
            if not rows:
                continue
            x = [r["concurrency"] for r in rows]
            style = "--s" if label == "Ray Serve" else "-o"
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
