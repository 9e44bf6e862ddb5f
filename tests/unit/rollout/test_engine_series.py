"""The decision engine on recorded metric series: what a user sees happen to a canary.

Each series is the runtime's counters per version, read once per analysis interval, for a
service under steady load; the harness feeds them to the engine exactly as a driver does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recops_operator.api import reasons
from recops_operator.api.rollout import MeasurementPhase, RolloutPhase, RolloutStatus, Weights
from recops_operator.api.rollout_policy import (
    AnalysisMetric,
    AnalysisStep,
    BuiltinMetric,
    CanaryStep,
    Comparison,
    PrometheusQuery,
    RolloutPolicy,
)
from recops_operator.rollout.actions import Controls
from recops_operator.rollout.analysis import measurement_plan
from recops_operator.rollout.engine import decide
from recops_operator.rollout.observations import Observation, VersionWindow, builtin_observation
from recops_operator.rollout.status import initial_status

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
INTERVAL = 3.0
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))


def policy(**overrides: object) -> RolloutPolicy:
    metrics = [
        AnalysisMetric(
            name="error-rate",
            builtin=BuiltinMetric.ERROR_RATE,
            success_condition=Comparison.LE,
            threshold=0.01,
            min_sample_size=100,
        ),
        AnalysisMetric(
            name="latency-p99",
            builtin=BuiltinMetric.LATENCY_P99,
            success_condition=Comparison.LE,
            threshold=0.1,
            min_sample_size=100,
        ),
        AnalysisMetric(
            name="hit-rate",
            builtin=BuiltinMetric.HIT_RATE_VS_STABLE,
            success_condition=Comparison.GE,
            threshold=-0.01,
            min_sample_size=500,
        ),
    ]
    steps = [
        CanaryStep(set_weight=10),
        CanaryStep(analysis=AnalysisStep(count=2)),
        CanaryStep(set_weight=50),
        CanaryStep(analysis=AnalysisStep(count=2)),
        CanaryStep(set_weight=100),
    ]
    fields: dict[str, object] = {"steps": steps, "metrics": metrics, "analysis_interval": "3s"}
    fields.update(overrides)
    return RolloutPolicy.model_validate(fields)


@dataclass(frozen=True)
class Behaviour:
    """How one version serves: error rate, online hit rate and its slowest 2% of requests."""

    error_rate: float = 0.0
    hit_rate: float = 0.12
    slow_latency: float = 0.02

    def window(self, requests: float) -> VersionWindow:
        fast, slow = requests * 0.98, requests * 0.02
        buckets = tuple(
            (b, (fast if b >= 0.005 else 0.0) + (slow if b >= self.slow_latency else 0.0))
            for b in BOUNDS
        )
        ok = requests * (1 - self.error_rate)
        return VersionWindow(
            requests=requests,
            errors=requests * self.error_rate,
            latency_buckets=buckets,
            recommendations=ok,
            hits=round(ok * self.hit_rate),
            clicks=round(ok * self.hit_rate),
        )


@dataclass
class Run:
    status: RolloutStatus
    timeline: list[tuple[float, str, str, Weights]]  # seconds, action, reason, weights
    first_traffic: float | None
    candidate_requests: float

    @property
    def final_reason(self) -> str:
        return self.status.reason or ""


def run(
    pol: RolloutPolicy,
    candidate: Behaviour,
    stable: Behaviour = Behaviour(),
    rps: float = 2000.0,
    seconds: float = 120.0,
    outage: Callable[[float], bool] = lambda t: False,
    controls: Callable[[float], Controls] = lambda t: Controls(),
    ready: Callable[[float], bool] = lambda t: True,
    status: RolloutStatus | None = None,
) -> Run:
    st = status or initial_status("1", "2", Controls(), T0)
    timeline: list[tuple[float, str, str, Weights]] = []
    first_traffic: float | None = None
    served = 0.0
    t = 0.0
    while t <= seconds:
        now = T0 + timedelta(seconds=t)
        plan = measurement_plan(pol, st, now)
        obs: dict[str, Observation] | None = None
        if plan is not None:
            weights = st.weights or Weights(stable=100, candidate=0)
            total = rps * plan.window_seconds
            cand = candidate.window(total * weights.candidate / 100)
            stab = stable.window(total * weights.stable / 100)
            obs = {
                m.name: Observation.outage("connection refused")
                if outage(t)
                else builtin_observation(m, cand, stab)
                for m in plan.metrics
            }
        out = decide(pol, st, controls(t), now, candidate_ready=ready(t), observations=obs)
        if out.recorded:
            timeline.append((t, out.action.kind, out.action.reason, out.action.weights))
        st = out.status
        if st.weights and st.weights.candidate > 0:
            if first_traffic is None:
                first_traffic = t
            served += rps * 0.5 * st.weights.candidate / 100
        if st.phase in (RolloutPhase.PROMOTED, RolloutPhase.ABORTED):
            break
        t += 0.5
    return Run(st, timeline, first_traffic, served)


def test_good_candidate_is_promoted_step_by_step() -> None:
    r = run(policy(), Behaviour())
    assert r.status.phase == RolloutPhase.PROMOTED
    assert r.status.weights == Weights(stable=0, candidate=100)
    assert [w.candidate for _, kind, _, w in r.timeline if kind == "setWeights"] == [10, 50, 100]
    assert r.final_reason == reasons.ALL_STEPS_COMPLETED
    hit = next(m for m in r.status.metrics or [] if m.name == "hit-rate")
    assert hit.phase == MeasurementPhase.SUCCESSFUL and hit.sample_size >= 500


def test_candidate_with_5_percent_errors_is_rolled_back_within_two_intervals() -> None:
    r = run(policy(), Behaviour(error_rate=0.05))
    assert r.status.phase == RolloutPhase.ABORTED
    assert r.status.weights == Weights(stable=100, candidate=0)
    assert r.final_reason == reasons.ANALYSIS_FAILED
    assert "error-rate" in (r.status.message or "")
    abort_time = next(t for t, kind, _, _ in r.timeline if kind == "abort")
    assert r.first_traffic is not None
    assert abort_time - r.first_traffic <= 2 * INTERVAL
    # Never got past the first canary weight.
    assert max(w.candidate for _, _, _, w in r.timeline) == 10


def test_latency_regression_is_rolled_back() -> None:
    r = run(policy(), Behaviour(slow_latency=0.4))
    assert r.status.phase == RolloutPhase.ABORTED
    latency = next(m for m in r.status.metrics or [] if m.name == "latency-p99")
    assert latency.phase == MeasurementPhase.FAILED
    assert latency.value is not None and latency.value > 0.25


def test_worse_model_with_lower_online_hit_rate_is_rolled_back() -> None:
    r = run(policy(), Behaviour(hit_rate=0.06))
    assert r.status.phase == RolloutPhase.ABORTED
    hit = next(m for m in r.status.metrics or [] if m.name == "hit-rate")
    assert hit.phase == MeasurementPhase.FAILED
    assert hit.value is not None and hit.value < -0.05
    assert hit.stable_value is not None and abs(hit.stable_value - 0.12) < 0.01


def test_slightly_worse_hit_rate_on_little_data_is_inconclusive_not_failed() -> None:
    # 0.105 vs 0.12 is below the -0.01 margin, but not significantly on 600 recommendations.
    r = run(policy(), Behaviour(hit_rate=0.105), seconds=30)
    hit = next(m for m in r.status.metrics or [] if m.name == "hit-rate")
    assert hit.phase == MeasurementPhase.INCONCLUSIVE
    assert r.status.phase != RolloutPhase.PROMOTED


def test_thin_traffic_is_inconclusive_and_pauses_instead_of_passing() -> None:
    r = run(policy(), Behaviour(), rps=100.0)
    assert r.status.phase == RolloutPhase.PAUSED
    assert r.final_reason == reasons.INCONCLUSIVE_LIMIT_EXCEEDED
    assert r.status.weights == Weights(stable=90, candidate=10)
    hit = next(m for m in r.status.metrics or [] if m.name == "hit-rate")
    assert hit.phase == MeasurementPhase.INCONCLUSIVE
    assert hit.inconclusives == 4  # the default limit of 3, plus the one that broke it
    assert "too little traffic" in hit.message


def test_thin_traffic_with_inconclusive_action_abort_rolls_back() -> None:
    r = run(policy(inconclusive_action="abort"), Behaviour(), rps=100.0)
    assert r.status.phase == RolloutPhase.ABORTED
    assert r.status.weights == Weights(stable=100, candidate=0)


def test_metrics_outage_pauses_at_the_same_weights_then_resumes() -> None:
    r = run(policy(), Behaviour(), outage=lambda t: 4 <= t < 20)
    paused = [(t, w) for t, _, reason, w in r.timeline if reason == reasons.METRICS_UNAVAILABLE]
    assert paused and all(w.candidate == 10 for _, w in paused)
    # The outage is not counted as inconclusive: the good candidate still gets promoted.
    assert r.status.phase == RolloutPhase.PROMOTED


def test_metrics_outage_never_promotes_while_it_lasts() -> None:
    r = run(policy(), Behaviour(), outage=lambda t: t >= 4, seconds=60)
    assert r.status.phase == RolloutPhase.PAUSED
    assert r.final_reason == reasons.METRICS_UNAVAILABLE
    assert r.status.weights == Weights(stable=90, candidate=10)


def test_a_query_that_errors_is_inconclusive_never_a_pass() -> None:
    pol = policy(
        metrics=[
            AnalysisMetric(
                name="custom",
                prometheus=PrometheusQuery(query="up"),
                success_condition=Comparison.GE,
                threshold=0.0,
            )
        ]
    )
    st = initial_status("1", "2", Controls(), T0)
    now = T0
    for _ in range(3):
        st = decide(pol, st, Controls(), now, candidate_ready=True).status
    now += timedelta(seconds=3)
    plan = measurement_plan(pol, st, now)
    assert plan is not None
    for obs, text in (
        (Observation.failed("parse error"), "query failed"),
        (Observation(), "no data"),
    ):
        out = decide(pol, st, Controls(), now, candidate_ready=True, observations={"custom": obs})
        result = out.measurements[0]
        assert result.phase == MeasurementPhase.INCONCLUSIVE
        assert text in result.message
        assert out.status.current_step_index == 1  # still analysing


def test_dry_run_metric_is_recorded_but_does_not_gate() -> None:
    base = policy()
    metrics = [m.model_copy(update={"dry_run": m.name == "latency-p99"}) for m in base.metrics]
    r = run(policy(metrics=metrics), Behaviour(slow_latency=0.4))
    assert r.status.phase == RolloutPhase.PROMOTED
    latency = next(m for m in r.status.metrics or [] if m.name == "latency-p99")
    assert latency.dry_run and latency.phase == MeasurementPhase.FAILED


def test_failure_limit_tolerates_that_many_failures() -> None:
    base = policy()
    metrics = [m.model_copy(update={"failure_limit": 1}) for m in base.metrics]
    steps = [CanaryStep(set_weight=10), CanaryStep(analysis=AnalysisStep(count=3))]
    r = run(policy(metrics=metrics, steps=steps), Behaviour(error_rate=0.05))
    assert r.status.phase == RolloutPhase.ABORTED
    err = next(m for m in r.status.metrics or [] if m.name == "error-rate")
    assert err.failures == 2


def test_an_analysis_step_naming_no_metrics_measures_all_of_them() -> None:
    from recops_operator.rollout.analysis import step_metrics

    p = policy()
    every = {m.name for m in p.metrics}
    for names in (None, []):
        step = CanaryStep(analysis=AnalysisStep(metrics=names))
        assert {m.name for m in step_metrics(p, step)} == every
    only = CanaryStep(analysis=AnalysisStep(metrics=["hit-rate"]))
    assert [m.name for m in step_metrics(p, only)] == ["hit-rate"]
