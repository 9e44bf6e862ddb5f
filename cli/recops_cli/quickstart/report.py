"""The quickstart's report folder: a markdown summary and the plots people look at."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recops_cli.quickstart.loop import LoopFacts


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
    loop: LoopFacts | None = None


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


def _plot_loop(loop: LoopFacts | None, path: Path) -> Path | None:
    """Drift statistics and online hit rate per version over the loop, with its events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if loop is None or not loop.series:
        return None
    start = loop.events[0][1] if loop.events else 0.0
    shown = [name for name in loop.triggered if name in loop.series] or ["popularity_psi"]
    panels = [*shown, "hit_rate"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.4 * len(panels)), sharex=True)
    for ax, name in zip(list(axes), panels, strict=True):
        for version, points in sorted(loop.series.get(name, {}).items()):
            if points:
                t, v = zip(*points, strict=True)
                ax.plot([x - start for x in t], v, label=f"v{version}")
        if name in loop.thresholds:
            ax.axhline(loop.thresholds[name], color="red", ls="--", lw=1, label="threshold")
        for what, when in loop.events:
            ax.axvline(when - start, color="grey", ls=":", lw=1)
            if ax is axes[0]:
                ax.annotate(
                    what,
                    (when - start, 1.0),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    va="top",
                    ha="right",
                    fontsize=7,
                )
        ax.set(title="online hit rate (10 s)" if name == "hit_rate" else f"drift: {name}")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    axes[-1].set(xlabel="seconds since the shift of taste")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _loop_lines(loop: LoopFacts) -> list[str]:
    ingested = loop.ingest.get("ingested", {})
    start = loop.events[0][1] if loop.events else 0.0
    lines = ["", "## Continuous training loop", ""]
    lines += [
        f"Shift of taste: {len(loop.trend.get('titles', []))} titles from popularity rank "
        f"{loop.trend.get('from_rank')} on became what the simulated users watch next "
        f"({loop.trend.get('per_user')} each, {loop.trend.get('users')} users who had watched "
        f"none of them); the watches of all but {loop.trend.get('followers')} of them were "
        "logged, the followers met the trend in the canary.",
        "",
        "| event | seconds after the shift |",
        "| --- | ---: |",
    ]
    lines += [f"| {what} | {when - start:.1f} |" for what, when in loop.events]
    lines += ["", f"Drift of v{loop.stable} (the last window's value; limits in the plot):", ""]
    lines += [f"- {name}: {value:.4f}" for name, value in loop.triggered.items()]
    lines += [
        "",
        f"New snapshot `{str(loop.ingest.get('hash', ''))[:16]}`, parent "
        f"`{str(loop.ingest.get('parent', ''))[:16]}`, "
        f"{len(loop.ingest.get('consumed', []))} log segments consumed: "
        f"{ingested.get('new_interactions')} new interactions "
        f"({ingested.get('feedback')} feedback events, {ingested.get('duplicates')} duplicates, "
        f"{ingested.get('repeated_items')} already in the data, {ingested.get('invalid')} "
        f"invalid lines); the simulated users watched {loop.watched_pairs} new titles.",
        "",
        f"v{loop.candidate} trained on snapshot `{str(loop.training.get('dataset_hash', ''))[:16]}`"
        f"; gate: {loop.training.get('gate', {}).get('verdict')} "
        f"({loop.training.get('gate', {}).get('reason')}).",
    ]
    if loop.rollout:
        verdict = loop.rollout.get("verdict", {})
        lines += [
            "",
            f"Rollout of v{loop.candidate}: **{verdict.get('phase')}**, {verdict.get('reason')}",
        ]
    return lines


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
            _plot_loop(facts.loop, folder / "loop.png"),
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
    if facts.loop is not None:
        lines += _loop_lines(facts.loop)
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
        json.dumps(
            facts.__dict__ | {"loop": asdict(facts.loop) if facts.loop else None},
            indent=1,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    return summary
