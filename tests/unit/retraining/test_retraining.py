"""Automatic retraining: drift of the stable version's hit rate, and minNewInteractions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recops_operator.api.recmodel import RecModelSpec, RecModelStatus
from recops_operator.api.trainingrun import TrainingRun
from recops_operator.decisions.recmodel import RecModelObservation, RecModelPlan, plan
from recops_operator.retraining.decision import LiveSignals, signals_wanted

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TRAINED = "2026-03-01T10:00:00Z"  # a day before NOW


def spec(**retraining: Any) -> RecModelSpec:
    return RecModelSpec.model_validate(
        {
            "dataset": {"format": "synthetic"},
            "targets": [{"name": "cpu-onnxruntime"}],
            "retraining": retraining,
        }
    )


DRIFT = spec(drift={"enabled": True, "threshold": 0.2, "minSampleSize": 1000, "cooldown": "6h"})


def first_run() -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "metadata": {"name": "movies-g1"},
            "spec": {"recModel": "movies"},
            "status": {
                "phase": "Succeeded",
                "completionTime": TRAINED,
                "modelVersion": "1",
                "gate": {"verdict": "candidate", "reason": "r"},
                "engines": [{"target": "cpu-onnxruntime", "artifactUri": "/a", "sha256": "0" * 64}],
            },
        }
    )


def serving(**status: Any) -> RecModelStatus:
    return RecModelStatus.model_validate(
        {
            "stableVersion": "1",
            "lastTrainingTime": TRAINED,
            "versions": [{"version": "1", "trainingRun": "movies-g1"}],
            **status,
        }
    )


def decide(
    s: RecModelSpec, status: RecModelStatus, signals: LiveSignals | None, now: datetime = NOW
) -> RecModelPlan:
    obs = RecModelObservation(
        now=now,
        generation=1,
        created=NOW - timedelta(days=3),
        runs=[first_run()],
        rollouts=[],
        signals=signals,
    )
    return plan("ml", "movies", s, status, obs)


def hit_rate(rate: float, count: float = 5000, new: float | None = None) -> LiveSignals:
    return LiveSignals(version="1", hits=rate * count, recommendations=count, new_interactions=new)


def test_the_first_judged_window_sets_the_baseline_and_a_drop_retrains() -> None:
    thin = decide(DRIFT, serving(), hit_rate(0.10, count=200))
    assert thin.start_training is None and thin.status.drift is not None
    assert thin.status.drift.baseline_hit_rate is None
    assert "1000 needed" in (thin.status.drift.message or "")

    first = decide(DRIFT, thin.status, hit_rate(0.10))
    assert first.status.drift is not None and first.status.drift.baseline_hit_rate == 0.10
    assert first.start_training is None

    steady = decide(DRIFT, first.status, hit_rate(0.085))  # 15% lower: under the threshold
    assert steady.start_training is None
    assert steady.status.drift is not None and round(steady.status.drift.drop or 0, 2) == 0.15

    fell = decide(DRIFT, steady.status, hit_rate(0.07))  # 30% lower
    assert fell.status.active_training_run == "movies-d202603021000"
    assert fell.start_training is not None
    assert any(e.reason == "DriftDetected" and "30%" in e.message for e in fell.events)
    assert fell.status.drift is not None and fell.status.drift.baseline_hit_rate == 0.10


def test_drift_waits_for_the_cooldown_after_the_last_training() -> None:
    status = serving(
        lastTrainingTime="2026-03-02T07:00:00Z",  # three hours ago; the cooldown is six
        drift={"version": "1", "baselineHitRate": 0.1},
    )
    p = decide(DRIFT, status, hit_rate(0.05))
    assert p.start_training is None
    assert p.status.drift is not None and "cooldown" in (p.status.drift.message or "")


def test_a_new_stable_version_starts_a_new_baseline() -> None:
    status = serving(stableVersion="2", drift={"version": "1", "baselineHitRate": 0.2})
    signals = LiveSignals(version="2", hits=50, recommendations=5000)
    p = decide(DRIFT, status, signals)
    assert p.start_training is None
    assert p.status.drift is not None
    assert (p.status.drift.version, p.status.drift.baseline_hit_rate) == ("2", 0.01)
    # Signals measured for the version just replaced never judge the new one.
    stale = decide(DRIFT, status, hit_rate(0.01))
    assert stale.status.drift is not None and stale.status.drift.baseline_hit_rate is None


def test_an_unreachable_prometheus_never_triggers() -> None:
    status = serving(drift={"version": "1", "baselineHitRate": 0.1})
    p = decide(DRIFT, status, LiveSignals(version="1", error="Prometheus at x: refused"))
    assert p.start_training is None
    assert p.status.drift is not None and "refused" in (p.status.drift.message or "")


def test_a_scheduled_run_without_enough_new_data_is_skipped_once() -> None:
    s = spec(schedule="0 3 * * *", minNewInteractions=5000)
    skipped = decide(s, serving(), LiveSignals(new_interactions=1200))
    assert skipped.start_training is None
    assert skipped.status.last_skipped_schedule == "2026-03-02T03:00:00.000Z"
    assert [e.reason for e in skipped.events if e.reason == "RetrainingSkipped"] == [
        "RetrainingSkipped"
    ]
    again = decide(s, skipped.status, LiveSignals(new_interactions=1300))
    assert again.start_training is None and not any(
        e.reason == "RetrainingSkipped" for e in again.events
    )
    enough = LiveSignals(new_interactions=9000)
    tomorrow = decide(s, skipped.status, enough, NOW + timedelta(days=1))
    assert tomorrow.status.active_training_run == "movies-s202603030300"


def test_a_drift_run_waits_for_new_data_and_unknown_counts_do_not_block() -> None:
    s = spec(
        drift={"enabled": True, "threshold": 0.2, "minSampleSize": 1000, "cooldown": "1h"},
        minNewInteractions=5000,
    )
    status = serving(drift={"version": "1", "baselineHitRate": 0.1})
    waiting = decide(s, status, hit_rate(0.05, new=10))
    assert waiting.start_training is None
    assert waiting.status.drift is not None
    assert "waits for data" in (waiting.status.drift.message or "")
    unknown = decide(s, status, LiveSignals(version="1", hits=250, recommendations=5000))
    assert unknown.start_training is not None
    assert any(e.reason == "NewInteractionsUnknown" for e in unknown.events)


def test_signals_are_asked_for_only_when_they_can_change_a_decision() -> None:
    assert not signals_wanted(spec(), serving())
    assert not signals_wanted(DRIFT, RecModelStatus())  # nothing serves yet
    assert not signals_wanted(DRIFT, serving(activeTrainingRun="movies-g2"))
    wanted = signals_wanted(DRIFT, serving())
    assert wanted.hit_rate_window_seconds == 3600 and not wanted.interactions
    counted = signals_wanted(spec(schedule="0 3 * * *", minNewInteractions=10), serving())
    assert counted.interactions and counted.hit_rate_window_seconds is None


STATISTICS = spec(
    drift={"enabled": True, "metric": "statistics", "statistics": {"window": 2000}},
)


def test_drift_statistics_triggered_by_the_serving_pods_retrain() -> None:
    wanted = signals_wanted(STATISTICS, serving())
    assert wanted.statistics and wanted.hit_rate_window_seconds is None
    quiet = decide(STATISTICS, serving(), LiveSignals(version="1", triggered_statistics=0))
    assert quiet.start_training is None
    assert quiet.status.drift is not None and quiet.status.drift.triggered_statistics == 0
    moved = decide(STATISTICS, quiet.status, LiveSignals(version="1", triggered_statistics=2))
    assert moved.start_training is not None
    assert moved.status.drift is not None and moved.status.drift.triggered_statistics == 2
    message = next(e.message for e in moved.events if e.reason == "DriftDetected")
    assert "2 drift statistic(s) of version 1" in message and "windows of 2000" in message
    # Measured for a version just replaced, or not at all: nothing starts.
    stale = decide(STATISTICS, serving(), LiveSignals(version="0", triggered_statistics=3))
    assert stale.start_training is None
    down = decide(STATISTICS, serving(), LiveSignals(version="1", error="refused"))
    assert down.start_training is None
