"""Manual promote, abort and retry; candidate readiness; pauses; resuming from stored status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recops_operator.api import reasons
from recops_operator.api.rollout import RolloutPhase, RolloutStatus, Weights
from recops_operator.api.rollout_policy import (
    AnalysisMetric,
    AnalysisStep,
    BuiltinMetric,
    CanaryStep,
    Comparison,
    PauseStep,
    RolloutPolicy,
)
from recops_operator.rollout.actions import Controls, Outcome
from recops_operator.rollout.analysis import measurement_plan
from recops_operator.rollout.engine import decide
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.stats import Proportion
from recops_operator.rollout.status import HISTORY_LIMIT, initial_status

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ERRORS = AnalysisMetric(
    name="errors",
    builtin=BuiltinMetric.ERROR_RATE,
    success_condition=Comparison.LE,
    threshold=0.01,
    min_sample_size=10,
)


def make_policy(*steps: CanaryStep) -> RolloutPolicy:
    return RolloutPolicy(steps=list(steps), metrics=[ERRORS], analysis_interval="2s")


def tick(
    pol: RolloutPolicy,
    st: RolloutStatus,
    at: float,
    controls: Controls | None = None,
    ready: bool = True,
    errors: float = 0.0,
) -> Outcome:
    now = T0 + timedelta(seconds=at)
    plan = measurement_plan(pol, st, now)
    obs = None
    if plan is not None:
        obs = {m.name: Observation(candidate=Proportion(errors, 100)) for m in plan.metrics}
    return decide(pol, st, controls or Controls(), now, candidate_ready=ready, observations=obs)


def drive(
    pol: RolloutPolicy, st: RolloutStatus, start: float, end: float, **kw: object
) -> RolloutStatus:
    t = start
    while t <= end:
        st = tick(pol, st, t, **kw).status  # type: ignore[arg-type]
        t += 0.5
    return st


CANARY = make_policy(
    CanaryStep(set_weight=20),
    CanaryStep(analysis=AnalysisStep(count=3)),
    CanaryStep(set_weight=60),
    CanaryStep(analysis=AnalysisStep()),
)


def test_manual_abort_returns_all_traffic_to_stable() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 3)
    assert st.weights == Weights(stable=80, candidate=20)
    out = tick(CANARY, st, 3.5, Controls(abort=True))
    assert out.action.kind == "abort"
    assert out.status.phase == RolloutPhase.ABORTED
    assert out.status.weights == Weights(stable=100, candidate=0)
    assert out.status.reason == reasons.ABORTED_BY_USER
    # Deciding again changes nothing (idempotent) and records nothing.
    again = tick(CANARY, out.status, 10, Controls(abort=True))
    assert not again.recorded and again.status == out.status.model_copy(
        update={"conditions": again.status.conditions}
    )


def test_retry_after_abort_restarts_from_the_first_step_once_abort_is_cleared() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 3)
    st = tick(CANARY, st, 3.5, Controls(abort=True)).status
    blocked = tick(CANARY, st, 4, Controls(abort=True, retry=1))
    assert blocked.status.phase == RolloutPhase.ABORTED
    assert blocked.status.reason == reasons.RETRY_BLOCKED_BY_ABORT
    assert blocked.status.weights == Weights(stable=100, candidate=0)
    retried = tick(CANARY, blocked.status, 5, Controls(retry=1))
    assert retried.action.kind == "retry"
    assert retried.status.phase == RolloutPhase.PROGRESSING
    assert retried.status.current_step_index == 0
    assert retried.status.observed_retry == 1
    # The retried rollout then runs to the end on its own.
    final = drive(CANARY, retried.status, 5.5, 30, controls=Controls(retry=1))
    assert final.phase == RolloutPhase.PROMOTED
    # The same retry number does not restart a finished rollout again.
    assert tick(CANARY, final, 31, Controls(retry=1)).status.phase == RolloutPhase.PROMOTED


def test_retry_after_an_analysis_failure() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 6, errors=5)
    assert st.phase == RolloutPhase.ABORTED and st.reason == reasons.ANALYSIS_FAILED
    st = tick(CANARY, st, 7, Controls(retry=1)).status
    st = drive(CANARY, st, 7.5, 40, controls=Controls(retry=1))
    assert st.phase == RolloutPhase.PROMOTED


def test_manual_promote_skips_the_remaining_steps() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 1)
    out = tick(CANARY, st, 1.5, Controls(promote=True))
    assert out.action.kind == "promote"
    assert out.status.phase == RolloutPhase.PROMOTED
    assert out.status.weights == Weights(stable=0, candidate=100)
    assert out.status.reason == reasons.PROMOTED_BY_USER


def test_promote_waits_for_a_ready_candidate() -> None:
    st = initial_status("1", "2", Controls(), T0)
    out = tick(CANARY, st, 0, Controls(promote=True), ready=False)
    assert out.action.kind == "wait"
    assert out.status.reason == reasons.CANDIDATE_NOT_READY
    assert out.status.weights == Weights(stable=100, candidate=0)
    assert tick(CANARY, out.status, 1, Controls(promote=True)).status.phase == RolloutPhase.PROMOTED


def test_stable_keeps_all_traffic_until_the_candidate_is_ready() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 20, ready=False)
    assert st.weights == Weights(stable=100, candidate=0)
    assert st.current_step_index == 0 and st.reason == reasons.CANDIDATE_NOT_READY
    st = drive(CANARY, st, 20.5, 60)
    assert st.phase == RolloutPhase.PROMOTED


def test_pause_until_promoted_holds_weights() -> None:
    pol = make_policy(CanaryStep(set_weight=30), CanaryStep(pause=PauseStep()))
    st = drive(pol, initial_status("1", "2", Controls(), T0), 0, 600)
    assert st.phase == RolloutPhase.PAUSED and st.reason == reasons.PAUSED_UNTIL_PROMOTED
    assert st.weights == Weights(stable=70, candidate=30)
    out = tick(pol, st, 601)
    assert out.action.requeue_after is None and not out.recorded
    assert tick(pol, st, 602, Controls(promote=True)).status.phase == RolloutPhase.PROMOTED


def test_timed_pause_moves_on_after_its_duration() -> None:
    pol = make_policy(CanaryStep(set_weight=30), CanaryStep(pause=PauseStep(duration="10s")))
    st = drive(pol, initial_status("1", "2", Controls(), T0), 0, 9)
    assert st.phase == RolloutPhase.PAUSED and st.current_step_index == 1
    st = drive(pol, st, 9.5, 11)
    assert st.phase == RolloutPhase.PROMOTED


def test_resume_from_stored_status_continues_at_the_same_step_and_weights() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 4)
    assert st.current_step_index == 1
    stored = RolloutStatus.model_validate(st.to_wire())  # what the API server keeps
    a = drive(CANARY, st, 4.5, 40)
    b = drive(CANARY, stored, 4.5, 40)
    assert a.phase == b.phase == RolloutPhase.PROMOTED
    assert [d.reason for d in a.history or []] == [d.reason for d in b.history or []]
    # Measurements already counted in the step are not lost across the restart.
    errors = next(m for m in stored.metrics or [] if m.name == "errors")
    assert errors.successes >= 1


def test_history_is_bounded() -> None:
    pol = make_policy(CanaryStep(set_weight=10), CanaryStep(analysis=AnalysisStep(count=1000)))
    st = drive(pol, initial_status("1", "2", Controls(), T0), 0, 200)
    assert len(st.history or []) == HISTORY_LIMIT
    assert st.phase == RolloutPhase.PROGRESSING


def test_conditions_reflect_the_outcome() -> None:
    st = drive(CANARY, initial_status("1", "2", Controls(), T0), 0, 6, errors=5)
    conds = {c.type: c for c in st.conditions or []}
    assert conds["AnalysisPassing"].status == "False"
    assert conds["Completed"].status == "True"
    assert conds["Ready"].status == "False"
    assert conds["Ready"].reason == reasons.ANALYSIS_FAILED
