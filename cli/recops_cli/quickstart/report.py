"""The quickstart's report folder: a markdown summary and the plots people look at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recops_cli.quickstart.facts import Facts, LoopFacts, facts_json
from recops_cli.quickstart.rollout_plot import plot_rollout
from recops_contracts.engine_manifest import EngineManifest
from recops_contracts.loadtest import LoadReport
from recops_contracts.training import EvaluationProtocol


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
        for lat in manifest.latency
    ]
    if not rows:
        return None
    batches = sorted({lat.batch for _, lat in rows})
    names = sorted({name for name, _ in rows})
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [
            next((lat.p50_ms for n, lat in rows if n == name and lat.batch == b), 0.0)
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
    ingested = loop.ingest["ingested"]
    start = loop.events[0][1] if loop.events else 0.0
    lines = ["", "## Continuous training loop", ""]
    lines += [
        f"Shift of taste: {len(loop.trend['titles'])} titles from popularity rank "
        f"{loop.trend['from_rank']} on became what the simulated users watch next "
        f"({loop.trend['per_user']} each, {loop.trend['users']} users who had watched "
        f"none of them); the watches of all but {loop.trend['followers']} of them were "
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
        f"New snapshot `{str(loop.ingest['hash'])[:16]}`, parent "
        f"`{str(loop.ingest['parent'])[:16]}`, "
        f"{len(loop.ingest['consumed'])} log segments consumed: "
        f"{ingested['new_interactions']} new interactions "
        f"({ingested['feedback']} feedback events, {ingested['duplicates']} duplicates, "
        f"{ingested['repeated_items']} already in the data, {ingested['invalid']} "
        f"invalid lines); the simulated users watched {loop.watched_pairs} new titles.",
    ]
    if loop.training is not None:
        gate = loop.training.gate
        lines += [
            "",
            f"v{loop.candidate} trained on snapshot `{loop.training.dataset_hash[:16]}`"
            f"; gate: {gate.verdict if gate else None} ({gate.reason if gate else None}).",
        ]
    if loop.rollout and loop.rollout.verdict:
        verdict = loop.rollout.verdict
        lines += [
            "",
            f"Rollout of v{loop.candidate}: **{verdict.phase}**, {verdict.reason}",
        ]
    return lines


def _traffic_by_version(reports: list[LoadReport]) -> dict[str, tuple[int, int, int]]:
    """Requests, successful requests and clicks on recommended items, per version."""
    totals: dict[str, tuple[int, int, int]] = {}
    for report in reports:
        for v in report.versions:
            requests, ok, hits = totals.get(v.version, (0, 0, 0))
            totals[v.version] = (requests + v.requests, ok + v.ok, hits + v.clicks)
    return totals


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _engine_row(version: str, target: str, manifest: EngineManifest) -> str:
    parity = manifest.parity
    b1, b64 = manifest.latency_at(1), manifest.latency_at(64)
    return (
        f"| v{version} | {target} | {_fmt(parity.max_abs_diff if parity else None)} | "
        f"{_fmt(parity.top10_overlap if parity else None)} | "
        f"{_fmt(b1.p50_ms if b1 else None)} | {_fmt(b64.p50_ms if b64 else None)} |"
    )


def write_report(facts: Facts, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plots = [
        p
        for p in (
            _plot_training(facts, folder / "training.png"),
            _plot_engines(facts, folder / "engines.png"),
            plot_rollout(facts.rollout, folder / "rollout.png"),
            _plot_loop(facts.loop, folder / "loop.png"),
        )
        if p is not None
    ]
    lines = ["# recops quickstart report", ""]
    if facts.synthetic:
        lines += [f"**Data: SYNTHETIC interactions** ({facts.synthetic_reason}).", ""]
    else:
        lines += [f"Data: {facts.data}", ""]
    lines += ["## Stages", "", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {secs:.1f} |" for name, secs in facts.stages]
    lines += ["", "## Models (test split)", ""]
    lines += [
        "| version | epochs | sampled NDCG@10 | sampled HR@10 | full NDCG@10 | full HR@10 | gate |"
    ]
    lines += ["| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    sampled, full = EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL
    for version, trained in facts.trainings.items():
        gate = trained.gate
        lines.append(
            f"| v{version} | {trained.epochs} | {_fmt(trained.test_metric(sampled, 'ndcg@10'))} | "
            f"{_fmt(trained.test_metric(sampled, 'hr@10'))} | "
            f"{_fmt(trained.test_metric(full, 'ndcg@10'))} | "
            f"{_fmt(trained.test_metric(full, 'hr@10'))} | "
            f"{gate.verdict if gate else ''}: {gate.reason if gate else ''} |"
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
            lines.append(_engine_row(version, target, manifest))
    if facts.rollout:
        verdict = facts.rollout.verdict
        lines += ["", "## Rollout", ""]
        lines += [
            f"**{verdict.phase}**: {verdict.reason} {verdict.message}"
            if verdict
            else "**None**: None ",
            "",
        ]
        lines += [
            "| seconds | step | action | weights | reason |",
            "| ---: | ---: | --- | --- | --- |",
        ]
        for rec in facts.rollout.records:
            w = rec.weights
            lines.append(
                f"| {rec.elapsed_s:.1f} | {rec.step_index} | {rec.action} | "
                f"stable={w.stable} candidate={w.candidate} | {rec.reason} |"
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
        json.dumps(facts_json(facts), indent=1, default=str) + "\n", encoding="utf-8"
    )
    return summary
