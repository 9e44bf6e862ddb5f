"""Judge one observation against its metric: Successful, Failed, Inconclusive or Error.

The rules that keep a canary honest live here: no data, too little data or a failed query
is Inconclusive (never a pass), and a candidate-against-stable comparison fails only when
a two-proportion test says the candidate is worse beyond the allowed margin.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import datetime

from recops_operator.api.rollout import MeasurementPhase, MetricResult
from recops_operator.api.rollout_policy import AnalysisMetric, BuiltinMetric, Comparison
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.stats import difference_test
from recops_operator.timeutil import format_time

_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.LT: operator.lt,
    Comparison.LE: operator.le,
    Comparison.GT: operator.gt,
    Comparison.GE: operator.ge,
}
_VS_STABLE = {BuiltinMetric.HIT_RATE_VS_STABLE, BuiltinMetric.CTR_VS_STABLE}


def evaluate(metric: AnalysisMetric, observation: Observation, now: datetime) -> MetricResult:
    """The measurement of ``metric`` (without counters: the engine accumulates those)."""
    base = MetricResult(
        name=metric.name,
        phase=MeasurementPhase.INCONCLUSIVE,
        threshold=metric.threshold,
        condition=f"{metric.success_condition.value} {metric.threshold:g}",
        dry_run=metric.dry_run,
        measured_at=format_time(now),
        stable_value=observation.stable_value,
    )
    if observation.unreachable:
        return base.model_copy(
            update={
                "phase": MeasurementPhase.ERROR,
                "message": f"metrics unavailable: {observation.error}",
            }
        )
    if observation.error is not None:
        return base.model_copy(update={"message": f"query failed: {observation.error}"})
    if metric.builtin in _VS_STABLE:
        return _versus_stable(metric, observation, base)
    if metric.builtin is BuiltinMetric.ERROR_RATE:
        return _error_rate(metric, observation, base)
    return _scalar(metric, observation, base)


def _inconclusive(base: MetricResult, message: str, **update: object) -> MetricResult:
    return base.model_copy(update={"message": message, **update})


def _judged(
    metric: AnalysisMetric, base: MetricResult, value: float, **update: object
) -> MetricResult:
    passed = _COMPARE[metric.success_condition](value, metric.threshold)
    phase = MeasurementPhase.SUCCESSFUL if passed else MeasurementPhase.FAILED
    message = (
        ""
        if passed
        else f"{value:.4g} is not {metric.success_condition.value} {metric.threshold:g}"
    )
    return base.model_copy(update={"phase": phase, "value": value, "message": message, **update})


def _scalar(metric: AnalysisMetric, obs: Observation, base: MetricResult) -> MetricResult:
    sample = obs.sample_size
    if metric.builtin is not None and (sample is None or sample < max(metric.min_sample_size, 1)):
        return _inconclusive(
            base,
            f"too little traffic: {sample or 0} requests, {metric.min_sample_size} needed",
            sample_size=sample or 0,
        )
    if obs.value is None:
        return _inconclusive(base, "the query returned no data", sample_size=sample or 0)
    if not math.isfinite(obs.value):
        return _inconclusive(base, f"the query returned {obs.value}", sample_size=sample or 0)
    return _judged(metric, base, obs.value, sample_size=sample or 0)


def _error_rate(metric: AnalysisMetric, obs: Observation, base: MetricResult) -> MetricResult:
    if obs.candidate is None:
        return _inconclusive(base, "no request counts for the candidate")
    requests = round(obs.candidate.trials)
    rate = obs.candidate.rate
    if rate is None or requests < max(metric.min_sample_size, 1):
        return _inconclusive(
            base,
            f"too little traffic: {requests} requests, {metric.min_sample_size} needed",
            sample_size=requests,
            value=rate,
        )
    return _judged(metric, base, rate, sample_size=requests)


def _versus_stable(metric: AnalysisMetric, obs: Observation, base: MetricResult) -> MetricResult:
    cand, stable = obs.candidate, obs.stable
    if cand is None or stable is None:
        return _inconclusive(base, "counts are missing for the candidate or the stable version")
    n_cand, n_stable = round(cand.trials), round(stable.trials)
    needed = max(metric.min_sample_size, 1)
    if n_cand < needed or n_stable < needed:
        return _inconclusive(
            base,
            f"too little traffic: candidate {n_cand}, stable {n_stable} recommendations, "
            f"{metric.min_sample_size} each needed",
            sample_size=min(n_cand, n_stable),
        )
    if cand.successes <= 0 and stable.successes <= 0:
        # Zero for both means feedback is not flowing, not that the versions are equal.
        return _inconclusive(
            base,
            "no hits or clicks recorded for either version: is feedback reaching the runtime?",
            sample_size=n_cand,
            value=0.0,
            stable_value=0.0,
        )
    test = difference_test(cand, stable, metric.threshold)
    alpha = 1.0 - metric.confidence
    rates = (
        f"candidate {cand.successes / cand.trials:.4f} "
        f"vs stable {stable.successes / stable.trials:.4f}"
    )
    update: dict[str, object] = {
        "value": test.difference,
        "stable_value": stable.successes / stable.trials,
        "sample_size": n_cand,
    }
    higher_is_better = metric.success_condition in (Comparison.GE, Comparison.GT)
    p_worse = test.p_below if higher_is_better else test.p_above
    if p_worse < alpha:
        return base.model_copy(
            update={
                "phase": MeasurementPhase.FAILED,
                "message": f"{rates}: worse beyond the margin {metric.threshold:g} "
                f"(p={p_worse:.2g} < {alpha:.2g})",
                **update,
            }
        )
    if _COMPARE[metric.success_condition](test.difference, metric.threshold):
        return base.model_copy(
            update={"phase": MeasurementPhase.SUCCESSFUL, "message": rates, **update}
        )
    return base.model_copy(
        update={
            "phase": MeasurementPhase.INCONCLUSIVE,
            "message": f"{rates}: below the margin but not significantly (p={p_worse:.2g})",
            **update,
        }
    )
