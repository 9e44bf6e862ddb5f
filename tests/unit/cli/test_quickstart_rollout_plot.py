"""rollout.png shows why a rollout was promoted: per metric, both versions, the threshold
and the decision of every analysis, latency in ms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from recops_cli.quickstart.rollout_plot import plot_rollout, rollout_figure
from recops_contracts.rollout_log import RolloutLog


def record(t: float, candidate: int, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "time": "2026-01-01T00:00:00.000+00:00",
        "elapsedS": t,
        "stepIndex": 1,
        "phase": "Progressing",
        "action": "setWeights" if metrics == [] else "analyze",
        "reason": "StepCompleted",
        "message": "",
        "weights": {"stable": 100 - candidate, "candidate": candidate},
        "metrics": metrics,
    }


def hits(phase: str, stable: float | None, candidate: float | None) -> dict[str, Any]:
    measured = {"stableValue": stable, "candidateValue": candidate}
    if stable is not None and candidate is not None:
        measured["value"] = candidate - stable
    return {
        "name": "hit-rate",
        "phase": phase,
        **{k: v for k, v in measured.items() if v is not None},
        "threshold": -0.03,
        "condition": ">= -0.03",
        "unit": "fraction",
    }


def latency(phase: str, stable: float, candidate: float) -> dict[str, Any]:
    return {
        "name": "latency",
        "phase": phase,
        "value": candidate,
        "stableValue": stable,
        "threshold": 0.05,
        "condition": "<= 0.05",
        "unit": "seconds",
        "sampleSize": 400,
    }


LOG = RolloutLog.model_validate(
    {
        "stable": "1",
        "candidate": "2",
        "policy": {},
        "provider": "scrape http://127.0.0.1:9090/metrics",
        "records": [
            record(0.0, 20, []),
            record(6.0, 20, [hits("Inconclusive", None, None), latency("Successful", 0.01, 0.012)]),
            record(12.0, 20, [hits("Successful", 0.10, 0.11), latency("Successful", 0.011, 0.013)]),
            record(12.5, 50, []),
            record(18.0, 50, [hits("Successful", 0.10, 0.12), latency("Failed", 0.01, 0.06)]),
        ],
        "verdict": {
            "phase": "Promoted",
            "reason": "AllStepsCompleted",
            "message": "",
            "weights": "stable=0 candidate=100",
            "stepIndex": 4,
        },
    }
)


def lines(fig: Figure) -> dict[str, tuple[Axes, Line2D]]:
    """Every drawn line by its id (``<metric>/<what>``), with the axes it is on."""
    return {str(line.get_gid()): (ax, line) for ax in fig.axes for line in ax.get_lines()}


def ys(line: Line2D) -> list[float]:
    return [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]


def test_each_metric_shows_both_versions_and_its_threshold() -> None:
    fig = rollout_figure(LOG)
    assert fig is not None
    drawn = lines(fig)
    for name in ("hit-rate", "latency"):
        for what in ("stable", "candidate", "threshold"):
            assert f"{name}/{what}" in drawn, (name, what, sorted(drawn))
        # The two versions share a panel.
        assert drawn[f"{name}/stable"][0] is drawn[f"{name}/candidate"][0]
    assert ys(drawn["hit-rate/stable"][1]) == [0.10, 0.10]
    assert ys(drawn["hit-rate/candidate"][1]) == [0.11, 0.12]


def test_latency_is_drawn_in_milliseconds() -> None:
    fig = rollout_figure(LOG)
    assert fig is not None
    drawn = lines(fig)
    ax, candidate = drawn["latency/candidate"]
    assert ys(candidate) == [12.0, 13.0, 60.0]
    assert ys(drawn["latency/stable"][1]) == [10.0, 11.0, 10.0]
    assert ys(drawn["latency/threshold"][1]) == [50.0, 50.0]
    assert ax.get_ylabel() == "ms"
    assert drawn["latency/threshold"][1].get_label() == "threshold: <= 50 ms"


def test_a_comparison_judges_the_difference_against_its_threshold() -> None:
    fig = rollout_figure(LOG)
    assert fig is not None
    drawn = lines(fig)
    difference, threshold = drawn["hit-rate/difference"], drawn["hit-rate/threshold"]
    assert difference[0] is threshold[0]  # their own axis, beside the two rates
    assert difference[0] is not drawn["hit-rate/candidate"][0]
    assert ys(difference[1]) == [0.11 - 0.10, 0.12 - 0.10]
    assert ys(threshold[1]) == [-0.03, -0.03]


def test_every_analysis_has_its_decision_and_the_weight_steps_are_marked() -> None:
    fig = rollout_figure(LOG)
    assert fig is not None
    drawn = lines(fig)
    decisions = {
        gid.rsplit("/", 1)[1]: len(ys(line))
        for gid, (_, line) in drawn.items()
        if gid.startswith("latency/decision/")
    }
    assert decisions == {"Successful": 2, "Failed": 1}
    # The measurement without counts is marked too, on the threshold.
    inconclusive = drawn["hit-rate/decision/Inconclusive"][1]
    assert ys(inconclusive) == [-0.03]
    steps = [
        ax for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "latency/weight-step"
    ]
    assert len(steps) == 2  # to 20% and to 50%


def test_the_plot_is_written_and_an_empty_log_draws_nothing(tmp_path: Path) -> None:
    assert plot_rollout(LOG, tmp_path / "rollout.png") == tmp_path / "rollout.png"
    assert (tmp_path / "rollout.png").stat().st_size > 0
    empty = LOG.model_copy(update={"records": []})
    assert plot_rollout(empty, tmp_path / "empty.png") is None
    assert plot_rollout(None, tmp_path / "none.png") is None
