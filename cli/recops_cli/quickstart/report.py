"""The quickstart's report folder: a markdown summary and the plots people look at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Facts:
    """Everything the quickstart learned, gathered for the report."""

    data: str = ""
    synthetic: bool = False
    stages: list[tuple[str, float]] = field(default_factory=list)
    trainings: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    engines: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    rollout: dict[str, Any] | None = None
    traffic: list[dict[str, Any]] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)


def _plot_training(facts: Facts, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not facts.curves:
        return None
    fig, (ax_loss, ax_ndcg) = plt.subplots(1, 2, figsize=(10, 3.8))
    for version, curves in facts.curves.items():
        if curves.get("loss"):
            ax_loss.plot(*zip(*curves["loss"], strict=True), "o-", label=f"v{version}")
        if curves.get("val_ndcg_at_10"):
            ax_ndcg.plot(*zip(*curves["val_ndcg_at_10"], strict=True), "o-", label=f"v{version}")
    ax_loss.set(title="training loss", xlabel="epoch")
    ax_ndcg.set(title="validation NDCG@10 (100 sampled negatives)", xlabel="epoch")
    for ax in (ax_loss, ax_ndcg):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_engines(facts: Facts, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (f"v{version} {target}", lat)
        for version, targets in facts.engines.items()
        for target, manifest in targets.items()
        for lat in manifest.get("latency", [])
    ]
    if not rows:
        return None
    batches = sorted({lat["batch"] for _, lat in rows})
    names = sorted({name for name, _ in rows})
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [
            next((lat["p50_ms"] for n, lat in rows if n == name and lat["batch"] == b), 0.0)
            for b in batches
        ]
        ax.bar([j + i * width for j in range(len(batches))], values, width, label=name)
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(batches))], [f"batch {b}" for b in batches]
    )
    ax.set(title="engine latency, p50 (ms)", ylabel="ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _metric_series(records: list[dict[str, Any]], name: str) -> list[tuple[float, float]]:
    out = []
    for rec in records:
        for m in rec.get("metrics", []):
            if m.get("name") == name and m.get("value") is not None:
                out.append((float(rec["elapsedS"]), float(m["value"])))
    return out


def _plot_rollout(facts: Facts, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not facts.rollout or not facts.rollout.get("records"):
        return None
    records = facts.rollout["records"]
    names = sorted({m["name"] for r in records for m in r.get("metrics", [])})
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(9, 2.2 * (1 + len(names))), sharex=True)
    axes = list(axes) if names else [axes]
    t = [float(r["elapsedS"]) for r in records]
    axes[0].step(t, [r["weights"]["candidate"] for r in records], where="post", label="candidate")
    axes[0].step(t, [r["weights"]["stable"] for r in records], where="post", label="stable")
    axes[0].set(title="traffic weights (%)", ylim=(-5, 105))
    axes[0].legend(fontsize=8)
    for ax, name in zip(axes[1:], names, strict=True):
        series = _metric_series(records, name)
        if series:
            ax.plot(*zip(*series, strict=True), "o-")
        ax.set(title=name)
        ax.grid(alpha=0.3)
    axes[-1].set(xlabel="seconds since the rollout started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _traffic_by_version(reports: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """Requests, successful requests and clicks on recommended items, per version."""
    totals: dict[str, tuple[int, int, int]] = {}
    for report in reports:
        for v in report.get("versions", []):
            requests, ok, hits = totals.get(v["version"], (0, 0, 0))
            totals[v["version"]] = (requests + v["requests"], ok + v["ok"], hits + v["clicks"])
    return totals


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(facts: Facts, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plots = [
        p
        for p in (
            _plot_training(facts, folder / "training.png"),
            _plot_engines(facts, folder / "engines.png"),
            _plot_rollout(facts, folder / "rollout.png"),
        )
        if p is not None
    ]
    lines = ["# recops quickstart report", ""]
    if facts.synthetic:
        lines += ["**Data: SYNTHETIC interactions** (no MovieLens-100K was found).", ""]
    else:
        lines += [f"Data: {facts.data}", ""]
    lines += ["## Stages", "", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {secs:.1f} |" for name, secs in facts.stages]
    lines += ["", "## Models (test split)", ""]
    lines += [
        "| version | epochs | sampled NDCG@10 | sampled HR@10 | full NDCG@10 | full HR@10 | gate |"
    ]
    lines += ["| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for version, trained in facts.trainings.items():
        test = trained.get("test", {})
        sampled, full = test.get("sampled", {}), test.get("full", {})
        gate = trained.get("gate", {})
        lines.append(
            f"| v{version} | {trained.get('epochs')} | {_fmt(sampled.get('ndcg@10'))} | "
            f"{_fmt(sampled.get('hr@10'))} | {_fmt(full.get('ndcg@10'))} | "
            f"{_fmt(full.get('hr@10'))} | {gate.get('verdict', '')}: {gate.get('reason', '')} |"
        )
    lines += [
        "",
        "Sampled: 100 negatives the user never saw; full: all items, seen ones excluded.",
        "",
    ]
    lines += [
        "## Engines",
        "",
        "| version | target | max abs diff | top-10 overlap | p50 ms b1 | p50 ms b64 |",
    ]
    lines += ["| --- | --- | ---: | ---: | ---: | ---: |"]
    for version, targets in facts.engines.items():
        for target, manifest in targets.items():
            parity = manifest.get("parity") or {}
            lat = {x["batch"]: x for x in manifest.get("latency", [])}
            lines.append(
                f"| v{version} | {target} | {_fmt(parity.get('max_abs_diff'))} | "
                f"{_fmt(parity.get('top10_overlap'))} | "
                f"{_fmt(lat.get(1, {}).get('p50_ms'))} | {_fmt(lat.get(64, {}).get('p50_ms'))} |"
            )
    if facts.rollout:
        verdict = facts.rollout.get("verdict", {})
        lines += ["", "## Rollout", ""]
        lines += [
            f"**{verdict.get('phase')}**: {verdict.get('reason')} {verdict.get('message', '')}",
            "",
        ]
        lines += [
            "| seconds | step | action | weights | reason |",
            "| ---: | ---: | --- | --- | --- |",
        ]
        for rec in facts.rollout.get("records", []):
            w = rec["weights"]
            lines.append(
                f"| {rec['elapsedS']:.1f} | {rec['stepIndex']} | {rec['action']} | "
                f"stable={w['stable']} candidate={w['candidate']} | {rec['reason']} |"
            )
    if facts.traffic:
        lines += ["", "## Simulated traffic", ""]
        lines += [f"{len(facts.traffic)} completed load runs (`recops loadtest`, open loop).", ""]
        lines += ["| version | requests | errors | hits | online hit rate |"]
        lines += ["| --- | ---: | ---: | ---: | ---: |"]
        for version, (requests, ok, hits) in sorted(_traffic_by_version(facts.traffic).items()):
            rate = hits / ok if ok else 0.0
            lines.append(f"| {version} | {requests} | {requests - ok} | {hits} | {rate:.4f} |")
    lines += ["", "## Explore", ""]
    lines += [f"- {k}: `{v}`" for k, v in facts.addresses.items()]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    summary = folder / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "facts.json").write_text(
        json.dumps(facts.__dict__, indent=1, default=str) + "\n", encoding="utf-8"
    )
    return summary
