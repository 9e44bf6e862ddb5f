"""The decision engine: (policy, status, controls, time, observations) -> next action.

A pure function. Drivers apply the action's weights first and then store the returned
status, so a crash between the two repeats an idempotent weight change instead of losing
one; a restarted driver continues from the stored status at the same step and weights.

Safety rules held here, for both drivers:
- weights move to the candidate only while the candidate is ready, and promotion waits
  for it too, so the stable version is never shrunk under an unready candidate;
- an analysis passes only on Successful measurements: no data, thin traffic or a failed
  query is Inconclusive, and a metrics outage pauses without counting;
- abort (manual or by analysis) returns 100% of traffic to stable; retry after an abort
  restarts from the first step.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from recops_operator.api import reasons
from recops_operator.api.rollout import (
    Decision,
    MeasurementPhase,
    MetricResult,
    RolloutPhase,
    RolloutStatus,
    Weights,
)
from recops_operator.api.rollout_policy import AnalysisMetric, CanaryStep, RolloutPolicy
from recops_operator.rollout.actions import Action, Controls, Outcome
from recops_operator.rollout.analysis import current_step, last_measured, measurement_plan, tally
from recops_operator.rollout.evaluate import evaluate
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.status import (
    ALL_CANDIDATE,
    ALL_STABLE,
    TERMINAL,
    held_for_human,
    paused_reason,
    rollout_conditions,
    weights_for,
    weights_text,
    with_history,
)
from recops_operator.timeutil import format_time, parse_duration, parse_time

# How soon to look again while waiting for something outside the engine (a candidate pod).
POLL_SECONDS = 5.0


class _Decider:
    """One decision; a class only to share the inputs among the small step functions."""

    def __init__(
        self,
        policy: RolloutPolicy,
        status: RolloutStatus,
        controls: Controls,
        now: datetime,
        candidate_ready: bool,
        observations: Mapping[str, Observation] | None,
    ) -> None:
        self.policy = policy
        self.status = status.model_copy(deep=True)
        self.controls = controls
        self.now = now
        self.candidate_ready = candidate_ready
        self.observations = observations
        self.measurements: list[MetricResult] = []

    @property
    def weights(self) -> Weights:
        return self.status.weights or ALL_STABLE

    # -- outcomes -------------------------------------------------------------------------

    def _finish(self, action: Action, *, recorded: bool = True) -> Outcome:
        st = self.status
        st.weights = action.weights
        st.weights_text = weights_text(action.weights)
        if recorded:
            st.reason, st.message = action.reason, action.message
            entry = Decision(
                time=format_time(self.now),
                step_index=st.current_step_index or 0,
                action=action.kind,
                reason=action.reason,
                message=action.message,
            )
            st.history = with_history(st.history, entry)
        st.conditions = rollout_conditions(st, action, self.now)
        return Outcome(action, st, recorded, tuple(self.measurements))

    def _enter_step(self, index: int) -> None:
        st = self.status
        st.current_step_index = index
        st.step_started_at = format_time(self.now)
        # Counters belong to one analysis step; values stay visible until re-measured.
        st.metrics = [
            m.model_copy(update={"successes": 0, "failures": 0, "inconclusives": 0})
            for m in st.metrics or []
        ]

    def _abort(self, reason: str, message: str) -> Outcome:
        self.status.phase = RolloutPhase.ABORTED
        return self._finish(Action("abort", ALL_STABLE, reason, message))

    def _promote(self, reason: str, message: str) -> Outcome:
        if not self.candidate_ready:
            return self._finish(
                Action(
                    "wait",
                    self.weights,
                    reasons.CANDIDATE_NOT_READY,
                    "waiting for the candidate to be ready before promoting it",
                    POLL_SECONDS,
                ),
                recorded=self.status.reason != reasons.CANDIDATE_NOT_READY,
            )
        self.status.phase = RolloutPhase.PROMOTED
        self.status.current_step_index = len(self.policy.steps)
        return self._finish(Action("promote", ALL_CANDIDATE, reason, message))

    # -- the decision -----------------------------------------------------------------------

    def decide(self) -> Outcome:
        st, controls = self.status, self.controls
        if st.phase in TERMINAL:
            return self._terminal()
        if controls.abort:
            return self._abort(controls.abort_reason, controls.abort_message)
        if controls.promote:
            return self._promote(reasons.PROMOTED_BY_USER, "promote requested; steps skipped")
        if held_for_human(st):
            if controls.retry > (st.observed_retry or 0):
                st.observed_retry = controls.retry
                st.phase = RolloutPhase.PROGRESSING
                self._enter_step(st.current_step_index or 0)
                return self._finish(
                    Action(
                        "retry",
                        self.weights,
                        reasons.RESUMED_BY_RETRY,
                        "retry requested while paused: the current step starts again",
                        0.0,
                    )
                )
            return self._finish(
                Action(
                    "pause", self.weights, paused_reason(st) or reasons.PAUSED, st.message or ""
                ),
                recorded=False,
            )
        step = current_step(self.policy, st)
        if step is None:
            return self._promote(reasons.ALL_STEPS_COMPLETED, "every step completed")
        if step.set_weight is not None:
            return self._set_weight(step.set_weight)
        if step.pause is not None:
            return self._pause(step.pause.duration)
        return self._analysis(step)

    def _terminal(self) -> Outcome:
        st, controls = self.status, self.controls
        weights = ALL_CANDIDATE if st.phase == RolloutPhase.PROMOTED else ALL_STABLE
        if st.phase != RolloutPhase.PROMOTED and controls.retry > (st.observed_retry or 0):
            if controls.abort:
                return self._finish(
                    Action(
                        "wait",
                        weights,
                        reasons.RETRY_BLOCKED_BY_ABORT,
                        "retry requested but abort is still set: clear spec.abort and the "
                        "recops.io/abort annotation",
                    ),
                    recorded=st.reason != reasons.RETRY_BLOCKED_BY_ABORT,
                )
            st.observed_retry = controls.retry
            st.phase = RolloutPhase.PROGRESSING
            self._enter_step(0)
            st.metrics = []
            return self._finish(
                Action("retry", ALL_STABLE, reasons.RETRIED, "restarting from the first step", 0.0)
            )
        return self._finish(
            Action("wait", weights, st.reason or "", st.message or ""), recorded=False
        )

    def _set_weight(self, percent: int) -> Outcome:
        st = self.status
        if percent > 0 and not self.candidate_ready:
            return self._finish(
                Action(
                    "wait",
                    self.weights,
                    reasons.CANDIDATE_NOT_READY,
                    f"waiting for the candidate to be ready before giving it {percent}%",
                    POLL_SECONDS,
                ),
                recorded=st.reason != reasons.CANDIDATE_NOT_READY,
            )
        st.phase = RolloutPhase.PROGRESSING
        index = st.current_step_index or 0
        self._enter_step(index + 1)
        return self._finish(
            Action(
                "setWeights",
                weights_for(percent),
                reasons.WEIGHT_SET,
                f"step {index}: candidate at {percent}%",
                0.0,
            )
        )

    def _pause(self, duration: str | None) -> Outcome:
        st = self.status
        index = st.current_step_index or 0
        if duration is None:
            st.phase = RolloutPhase.PAUSED
            return self._finish(
                Action(
                    "pause",
                    self.weights,
                    reasons.PAUSED_UNTIL_PROMOTED,
                    f"step {index}: paused until promoted (set spec.promote or the "
                    "recops.io/promote annotation)",
                )
            )
        started = parse_time(st.step_started_at) if st.step_started_at else self.now
        end = started + timedelta(seconds=parse_duration(duration))
        if self.now >= end:
            st.phase = RolloutPhase.PROGRESSING
            self._enter_step(index + 1)
            return self._finish(
                Action("wait", self.weights, reasons.PAUSE_ENDED, f"step {index}: pause ended", 0.0)
            )
        first = st.phase != RolloutPhase.PAUSED
        st.phase = RolloutPhase.PAUSED
        return self._finish(
            Action(
                "pause",
                self.weights,
                reasons.PAUSE_STEP,
                f"step {index}: paused for {duration}",
                (end - self.now).total_seconds(),
            ),
            recorded=first,
        )

    def _analysis(self, step: CanaryStep) -> Outcome:
        st = self.status
        interval = parse_duration(self.policy.analysis_interval)
        plan = measurement_plan(self.policy, st, self.now)
        if plan is None or self.observations is None:
            due = last_measured(st, self.now) + timedelta(seconds=interval)
            wait = max((due - self.now).total_seconds(), 0.0)
            return self._finish(
                Action(
                    "wait",
                    self.weights,
                    st.reason or reasons.ANALYSIS_RUNNING,
                    st.message or "",
                    wait if plan is None else 0.0,
                ),
                recorded=False,
            )
        metrics = plan.metrics
        judged = [
            evaluate(m, self.observations.get(m.name, Observation.failed("not measured")), self.now)
            for m in metrics
        ]
        index = st.current_step_index or 0
        gating = [m for m in metrics if not m.dry_run]
        outage = [
            r
            for r, m in zip(judged, metrics, strict=True)
            if not m.dry_run and r.phase == MeasurementPhase.ERROR
        ]
        # An outage is not counted: the candidate was not judged, only the metrics are gone.
        st.metrics, self.measurements = tally(st.metrics or [], judged, count=not outage)
        if outage:
            st.phase = RolloutPhase.PAUSED
            return self._finish(
                Action(
                    "pause",
                    self.weights,
                    reasons.METRICS_UNAVAILABLE,
                    f"step {index}: {outage[0].message}; holding weights until metrics return",
                    interval,
                ),
                recorded=st.reason != reasons.METRICS_UNAVAILABLE,
            )
        st.phase = RolloutPhase.PROGRESSING
        latest = {r.name: r for r in self.measurements}
        return self._judge(
            step, [latest[m.name] for m in gating], {m.name: m for m in gating}, index, interval
        )

    def _judge(
        self,
        step: CanaryStep,
        results: list[MetricResult],
        metrics: Mapping[str, AnalysisMetric],
        index: int,
        interval: float,
    ) -> Outcome:
        assert step.analysis is not None
        failed = [r for r in results if r.failures > metrics[r.name].failure_limit]
        if failed:
            detail = "; ".join(f"{r.name}: {r.message}" for r in failed)
            return self._abort(reasons.ANALYSIS_FAILED, f"step {index}: {detail}")
        stuck = [r for r in results if r.inconclusives > metrics[r.name].inconclusive_limit]
        if stuck:
            detail = "; ".join(f"{r.name}: {r.message}" for r in stuck)
            message = f"step {index}: inconclusive too often ({detail})"
            if self.policy.inconclusive_action == "abort":
                return self._abort(reasons.INCONCLUSIVE_LIMIT_EXCEEDED, message)
            self.status.phase = RolloutPhase.PAUSED
            return self._finish(
                Action(
                    "pause",
                    self.weights,
                    reasons.INCONCLUSIVE_LIMIT_EXCEEDED,
                    message + "; promote, abort, or increase retry to measure again",
                )
            )
        if all(r.successes >= step.analysis.count for r in results):
            self._enter_step(index + 1)
            summary = ", ".join(f"{r.name}={r.value:.4g}" for r in results if r.value is not None)
            return self._finish(
                Action(
                    "wait",
                    self.weights,
                    reasons.ANALYSIS_PASSED,
                    f"step {index}: analysis passed ({summary})",
                    0.0,
                )
            )
        pending = [r for r in results if r.phase != MeasurementPhase.SUCCESSFUL]
        reason = reasons.MEASUREMENT_INCONCLUSIVE if pending else reasons.ANALYSIS_RUNNING
        detail = "; ".join(f"{r.name}: {r.message}" for r in pending)
        return self._finish(
            Action(
                "wait",
                self.weights,
                reason,
                f"step {index}: {detail or 'measured, more measurements needed'}",
                interval,
            )
        )


def decide(
    policy: RolloutPolicy,
    status: RolloutStatus,
    controls: Controls,
    now: datetime,
    *,
    candidate_ready: bool,
    observations: Mapping[str, Observation] | None = None,
) -> Outcome:
    """The next action and the status to store after applying it.

    ``observations`` carries one observation per metric of :func:`measurement_plan`; pass
    None when no measurement was due (the engine then only handles steps and controls).
    """
    return _Decider(policy, status, controls, now, candidate_ready, observations).decide()
