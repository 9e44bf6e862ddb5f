"""When to train again without being asked: on the cron schedule, or when the stable
version's online hit rate has drifted down from its own start; either waits for enough
new interactions when ``minNewInteractions`` asks for them. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import DriftStatus, DriftTrigger, RecModelSpec, RecModelStatus
from recops_operator.render.common import object_name
from recops_operator.schedule import next_fire
from recops_operator.timeutil import format_time, parse_duration, parse_time


@dataclass(frozen=True)
class LiveSignals:
    """What Prometheus said about a RecModel's traffic; None for what was not measured."""

    version: str | None = None  # the stable version the hit rate is of
    hits: float | None = None  # online hits of that version in the drift window
    recommendations: float | None = None  # its recommendations in that window
    new_interactions: float | None = None  # feedback events since training last started
    triggered_statistics: float | None = None  # drift statistics of that version triggered
    error: str | None = None  # why something asked for is None

    @property
    def hit_rate(self) -> float | None:
        if self.hits is None or not self.recommendations:
            return None
        return self.hits / self.recommendations


@dataclass(frozen=True)
class SignalsWanted:
    hit_rate_window_seconds: float | None
    interactions: bool
    statistics: bool = False

    def __bool__(self) -> bool:
        return self.hit_rate_window_seconds is not None or self.interactions or self.statistics


def signals_wanted(spec: RecModelSpec, status: RecModelStatus) -> SignalsWanted:
    """What to ask Prometheus before planning (nothing while training runs or nothing serves)."""
    policy = spec.retraining
    if status.stable_version is None or status.active_training_run:
        return SignalsWanted(None, False)
    drift = policy.drift
    by_hit_rate = drift.enabled and drift.metric == "hit-rate-drop"
    window = parse_duration(drift.window) if by_hit_rate else None
    wants_runs = drift.enabled or policy.schedule is not None
    statistics = drift.enabled and drift.metric == "statistics"
    return SignalsWanted(window, policy.min_new_interactions > 0 and wants_runs, statistics)


def watch_drift(
    trigger: DriftTrigger, status: RecModelStatus, signals: LiveSignals | None, now: datetime
) -> tuple[DriftStatus | None, str | None]:
    """The stable version's drift status, and why to retrain when its hit rate fell.

    The baseline is the first window after the version started serving that holds
    ``minSampleSize`` recommendations; a new stable version starts a new baseline.
    """
    stable = status.stable_version
    if not trigger.enabled or stable is None:
        return None, None
    known = status.drift if status.drift and status.drift.version == stable else None
    drift = known.model_copy() if known else DriftStatus(version=stable)
    if signals is None or signals.version != stable:
        # Not measured now (a run in progress), or measured for the version just replaced.
        return drift, None
    drift.checked_at = format_time(now)
    if signals.error:
        drift.message = f"not measured: {signals.error}"
        return drift, None
    if trigger.metric == "statistics":
        return _watch_statistics(trigger, drift, signals)
    rate, count = signals.hit_rate, signals.recommendations or 0.0
    if rate is None or count < trigger.min_sample_size:
        drift.message = (
            f"{count:.0f} recommendations of version {stable} in the last {trigger.window}; "
            f"{trigger.min_sample_size} needed to judge"
        )
        return drift, None
    drift.hit_rate, drift.message = rate, None
    if drift.baseline_hit_rate is None:
        drift.baseline_hit_rate, drift.drop = rate, 0.0
        return drift, None
    base = drift.baseline_hit_rate
    drift.drop = (base - rate) / base if base > 0 else 0.0
    if drift.drop >= trigger.threshold:
        return drift, (
            f"the online hit rate of version {stable} fell {drift.drop:.0%} from its start "
            f"({base:.4f} to {rate:.4f} over {trigger.window}; threshold {trigger.threshold:.0%})"
        )
    return drift, None


def _watch_statistics(
    trigger: DriftTrigger, drift: DriftStatus, signals: LiveSignals
) -> tuple[DriftStatus, str | None]:
    """The serving pods judge windows of requests against the training data and report
    which statistics breached for ``consecutive`` windows (recops_drift_triggered)."""
    count = int(signals.triggered_statistics or 0)
    drift.triggered_statistics, drift.message = count, None
    if not count:
        return drift, None
    rules = trigger.statistics
    return drift, (
        f"{count} drift statistic(s) of version {drift.version} stayed above their "
        f"thresholds for {rules.consecutive} windows of {rules.window} requests "
        "(recops_drift_triggered; the recops / Serving dashboard shows which)"
    )


def automatic_run(
    name: str,
    spec: RecModelSpec,
    status: RecModelStatus,
    signals: LiveSignals | None,
    drift_reason: str | None,
    now: datetime,
    created: datetime,
    events: list[Event],
) -> str | None:
    """The name of a scheduled or drift-triggered TrainingRun to start now, or None.

    Updates ``status`` (a skipped schedule, a drift waiting for data) and appends events.
    """
    policy = spec.retraining
    last = parse_time(status.last_training_time) if status.last_training_time else created
    run = kind = None
    due: datetime | None = None
    if policy.schedule:
        text = status.last_skipped_schedule
        skipped = parse_time(text) if text else None
        due = next_fire(policy.schedule, max(last, skipped) if skipped else last)
        if due <= now:
            run, kind = object_name(name, due.strftime("s%Y%m%d%H%M")), "scheduled"
    if run is None and drift_reason is not None:
        cooldown = timedelta(seconds=parse_duration(policy.drift.cooldown))
        if now - last < cooldown:
            _note(status, f"{drift_reason}; retraining waits for the cooldown after {last:%H:%M}")
            return None
        run, kind = object_name(name, now.strftime("d%Y%m%d%H%M")), "drift"
    if run is None:
        return None
    wanted = policy.min_new_interactions
    new = signals.new_interactions if signals else None
    if wanted and new is not None and new < wanted:
        why = f"{new:.0f} new interactions since training last started, {wanted} needed"
        if kind == "scheduled":
            assert due is not None
            status.last_skipped_schedule = format_time(due)
            events.append(
                Event("Normal", reasons.RETRAINING_SKIPPED, f"scheduled run skipped: {why}")
            )
        else:
            _note(status, f"{drift_reason}; retraining waits for data: {why}")
        return None
    if wanted and new is None:
        events.append(
            Event(
                "Warning",
                reasons.NEW_INTERACTIONS_UNKNOWN,
                f"{kind} run starts without knowing the new interactions: "
                f"{signals.error if signals else 'not measured'}",
            )
        )
    if kind == "drift":
        events.append(Event("Warning", reasons.DRIFT_DETECTED, f"{drift_reason}; retraining"))
    return run


def _note(status: RecModelStatus, message: str) -> None:
    if status.drift is not None:
        status.drift.message = message
