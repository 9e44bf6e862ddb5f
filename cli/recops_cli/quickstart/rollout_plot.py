"""rollout.png: why a rollout was promoted or rolled back, read from its decision log.

A panel of the traffic weights, then one per metric: both versions' values over the
rollout, the threshold, the decision of each analysis and the weight steps, in the
metric's unit (latency in ms). Where a metric compares the candidate with the stable
version (``hit-rate-vs-stable``), the panel shows both rates, and the difference with its
threshold on a second axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from recops_contracts.rollout_log import RolloutLog, RolloutMetric

# Each analysis' decision: the marker, its colour and the legend's word.
DECISIONS = {
    "Successful": ("o", "tab:green", "pass"),
    "Failed": ("X", "tab:red", "fail"),
    "Inconclusive": ("s", "tab:orange", "inconclusive"),
    "Error": ("x", "black", "error"),
}
# One colour per version in every panel; the difference gets its own, as does its axis.
STABLE, CANDIDATE, DIFFERENCE = "tab:blue", "tab:orange", "tab:purple"
# The log's units as shown: a factor and a label (latency is read in ms, not seconds).
SHOWN_UNITS = {"seconds": (1000.0, "ms"), "fraction": (1.0, "fraction")}

Measured = list[tuple[float, RolloutMetric]]  # (seconds since the start, measurement)


def rollout_figure(log: RolloutLog) -> Figure | None:
    """The figure of ``log``'s records, or None before the first one."""
    if not log.records:
        return None
    by_metric: dict[str, Measured] = {}
    for record in log.records:
        for metric in record.metrics:
            by_metric.setdefault(metric.name, []).append((record.elapsed_s, metric))
    fig = Figure(figsize=(11, 2.6 * (1 + len(by_metric))), layout="constrained")
    axes = fig.subplots(1 + len(by_metric), 1, sharex=True, squeeze=False)[:, 0]
    steps = _weight_steps(log)
    _weights_panel(axes[0], log)
    for ax, (name, measured) in zip(axes[1:], sorted(by_metric.items()), strict=True):
        _metric_panel(ax, name, measured, log)
        for when in steps:
            ax.axvline(when, color="grey", ls=":", lw=1, gid=f"{name}/weight-step")
    axes[-1].set(xlabel="seconds since the rollout started")
    if log.verdict is not None:
        fig.suptitle(
            f"{_shown(log.candidate)} against {_shown(log.stable)}: {log.verdict.phase} "
            f"({log.verdict.reason})"
        )
    return fig


def plot_rollout(log: RolloutLog | None, path: Path) -> Path | None:
    fig = rollout_figure(log) if log is not None else None
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return path


def _shown(version: str) -> str:
    """``v2`` for a registry's version number, a name as it is."""
    return f"v{version}" if version.isdigit() else version


def _weight_steps(log: RolloutLog) -> list[float]:
    """When the candidate's share changed."""
    steps, share = [], 0
    for record in log.records:
        if record.weights.candidate != share:
            steps.append(record.elapsed_s)
            share = record.weights.candidate
    return steps


def _weights_panel(ax: Axes, log: RolloutLog) -> None:
    t = [r.elapsed_s for r in log.records]
    candidate = [r.weights.candidate for r in log.records]
    stable = [r.weights.stable for r in log.records]
    ax.step(t, stable, where="post", color=STABLE, label=f"stable {_shown(log.stable)}")
    ax.step(t, candidate, where="post", color=CANDIDATE, label=f"candidate {_shown(log.candidate)}")
    ax.set(title="traffic weights", ylabel="% of requests", ylim=(-5, 105))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)


def _metric_panel(ax: Axes, name: str, measured: Measured, log: RolloutLog) -> None:
    last = measured[-1][1]
    factor, unit = SHOWN_UNITS.get(last.unit or "", (1.0, ""))
    line = _Lines(name, measured, factor)
    stable, candidate = f"stable {_shown(log.stable)}", f"candidate {_shown(log.candidate)}"
    line(ax, "stable", stable, lambda m: m.stable_value, STABLE)
    if any(m.candidate_value is not None for _, m in measured):
        # The threshold judges the difference: it gets an axis of its own, in its colour.
        line(ax, "candidate", candidate, lambda m: m.candidate_value, CANDIDATE)
        judged = ax.twinx()
        line(judged, "difference", "candidate - stable", lambda m: m.value, DIFFERENCE, "--")
        judged.set_ylabel("candidate - stable", color=DIFFERENCE)
        judged.tick_params(axis="y", colors=DIFFERENCE)
        title = f"{name}: both versions, and their difference against the threshold"
    else:
        line(ax, "candidate", candidate, lambda m: m.value, CANDIDATE)
        judged = ax
        title = f"{name} ({unit})" if unit else name
    if last.threshold is not None:
        judged.axhline(
            last.threshold * factor,
            color="red",
            ls="--",
            lw=1,
            label=f"threshold: {_condition(last, factor, unit)}",
            gid=f"{name}/threshold",
        )
    _decisions(judged, name, measured, factor)
    ax.set(title=title, ylabel=unit)
    ax.grid(alpha=0.3)
    shown = [ax] if judged is ax else [ax, judged]
    handles = [h for a in shown for h in a.get_lines() if not str(h.get_label()).startswith("_")]
    # Outside the panel, right of the second axis where there is one.
    beside = 1.01 if judged is ax else 1.12
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(beside, 1.0))


@dataclass(frozen=True)
class _Lines:
    """Draws one of a metric's values over time, scaled to the shown unit."""

    metric: str
    measured: Measured
    factor: float

    def __call__(
        self,
        ax: Axes,
        what: str,
        label: str,
        value: Callable[[RolloutMetric], float | None],
        colour: str,
        style: str = "-",
    ) -> None:
        points = [(t, v * self.factor) for t, m in self.measured if (v := value(m)) is not None]
        if points:
            times, values = zip(*points, strict=True)
            gid = f"{self.metric}/{what}"
            ax.plot(times, values, marker=".", ls=style, color=colour, label=label, gid=gid)


def _condition(metric: RolloutMetric, factor: float, unit: str) -> str:
    """``<= 500 ms`` for a latency logged as ``<= 0.5`` seconds."""
    assert metric.threshold is not None
    comparison = (metric.condition or "").split(" ")[0]
    shown = "" if unit == "fraction" else unit  # a fraction needs no word after the number
    return f"{comparison} {metric.threshold * factor:g} {shown}".strip()


def _decisions(ax: Axes, name: str, measured: Measured, factor: float) -> None:
    """One marker per analysis, on the judged value (on the threshold when there was
    none: too little traffic, say)."""
    for phase, (marker, colour, word) in DECISIONS.items():
        at = [
            (t, m.threshold if m.value is None else m.value)
            for t, m in measured
            if m.phase == phase
        ]
        points = [(t, v * factor) for t, v in at if v is not None]
        if points:
            times, values = zip(*points, strict=True)
            ax.plot(
                times,
                values,
                ls="none",
                marker=marker,
                color=colour,
                markersize=8,
                label=word,
                gid=f"{name}/decision/{phase}",
            )
