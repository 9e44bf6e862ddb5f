"""When an analysis step measures, and over which window."""

from __future__ import annotations

from datetime import datetime, timedelta

from recops_operator.api.rollout import MeasurementPhase, MetricResult, RolloutPhase, RolloutStatus
from recops_operator.api.rollout_policy import AnalysisMetric, CanaryStep, RolloutPolicy
from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.status import held_for_human
from recops_operator.timeutil import parse_duration, parse_time


def step_metrics(policy: RolloutPolicy, step: CanaryStep) -> list[AnalysisMetric]:
    """The policy's metrics an analysis step measures (all of them when it names none)."""
    assert step.analysis is not None
    names = step.analysis.metrics
    # None and [] both mean all: an empty list must not make a step that measures nothing
    # and so passes at once.
    return [m for m in policy.metrics if not names or m.name in names]


def current_step(policy: RolloutPolicy, status: RolloutStatus) -> CanaryStep | None:
    index = status.current_step_index or 0
    return policy.steps[index] if index < len(policy.steps) else None


def last_measured(status: RolloutStatus, now: datetime) -> datetime:
    """When the current step last measured (or began): the next window starts there."""
    started = parse_time(status.step_started_at) if status.step_started_at else now
    times = [parse_time(m.measured_at) for m in status.metrics or [] if m.measured_at]
    return max([started, *(t for t in times if t >= started)])


def measurement_plan(
    policy: RolloutPolicy, status: RolloutStatus, now: datetime
) -> MeasurementPlan | None:
    """What to measure now, or None when no measurement is due."""
    if status.phase not in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED):
        return None
    if held_for_human(status):
        return None
    step = current_step(policy, status)
    if step is None or step.analysis is None:
        return None
    interval = parse_duration(policy.analysis_interval)
    last = last_measured(status, now)
    if now < last + timedelta(seconds=interval):
        return None
    return MeasurementPlan(step_metrics(policy, step), (now - last).total_seconds())


_COUNTER = {MeasurementPhase.SUCCESSFUL: "successes", MeasurementPhase.FAILED: "failures"}


def tally(
    previous: list[MetricResult], judged: list[MetricResult], *, count: bool
) -> tuple[list[MetricResult], list[MetricResult]]:
    """Fold new measurements into the status' metric list.

    Each result carries the step's counters forward, plus one for its own phase when
    ``count`` (an outage records values without counting). Returns the whole list for the
    status and the new results alone.
    """
    by_name = {m.name: m for m in previous}
    fresh: list[MetricResult] = []
    for result in judged:
        old = by_name.get(result.name)
        counts = {
            "successes": old.successes if old else 0,
            "failures": old.failures if old else 0,
            "inconclusives": old.inconclusives if old else 0,
        }
        if count:
            counts[_COUNTER.get(result.phase, "inconclusives")] += 1
        by_name[result.name] = result.model_copy(update=counts)
        fresh.append(by_name[result.name])
    return list(by_name.values()), fresh
