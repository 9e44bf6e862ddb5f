"""Statistics the analysis needs, in the standard library only.

The operator image carries no scipy, and a normal approximation is all a two-proportion
test needs at the sample sizes a canary gates on (hundreds of requests or more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``trials`` (clicks out of recommendations, errors out of requests)."""

    successes: float
    trials: float

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials > 0 else None


@dataclass(frozen=True)
class DifferenceTest:
    """Candidate minus stable rate, and how sure we are that it lies on each side of a margin."""

    difference: float
    standard_error: float
    # One-sided p-value of "the true difference is at least the margin" (small: clearly below).
    p_below: float
    # One-sided p-value of "the true difference is at most the margin" (small: clearly above).
    p_above: float


def difference_test(candidate: Proportion, stable: Proportion, margin: float) -> DifferenceTest:
    """Two-proportion z-test of ``p_candidate - p_stable`` against ``margin``.

    Uses the unpooled standard error, which is the right one when the null hypothesis is a
    non-zero difference (a non-inferiority margin such as -0.01).
    """
    if candidate.trials <= 0 or stable.trials <= 0:
        raise ValueError("both versions need at least one trial")
    pc = candidate.successes / candidate.trials
    ps = stable.successes / stable.trials
    diff = pc - ps
    # A rate can pass 1 when one recommendation earns several hits (a session watching two
    # of its titles); the binomial variance is then taken at the bound instead of going
    # negative.
    vc, vs = _bernoulli_variance(pc), _bernoulli_variance(ps)
    se = math.sqrt(vc / candidate.trials + vs / stable.trials)
    if se == 0.0:
        below = 0.0 if diff < margin else 1.0
        above = 0.0 if diff > margin else 1.0
        return DifferenceTest(diff, 0.0, below, above)
    z = (diff - margin) / se
    return DifferenceTest(diff, se, _NORMAL.cdf(z), 1.0 - _NORMAL.cdf(z))


def _bernoulli_variance(p: float) -> float:
    clipped = min(max(p, 0.0), 1.0)
    return clipped * (1.0 - clipped)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``(upper_bound, count)`` buckets.

    Linear interpolation inside the bucket that holds the rank; a rank in the ``+Inf``
    bucket answers the largest finite bound, as Prometheus does. None without observations.
    """
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        raise ValueError("a histogram needs its +Inf bucket")
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
