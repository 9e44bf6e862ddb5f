"""The statistics behind the analysis, checked against scipy and Prometheus' definitions."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from recops_operator.rollout.stats import Proportion, difference_test, histogram_quantile
from recops_operator.timeutil import format_time, parse_duration, parse_time


@pytest.mark.parametrize(
    ("cand", "stable", "margin"),
    [
        ((60, 1000), (120, 1000), -0.01),
        ((118, 1000), (120, 1000), -0.01),
        ((30, 200), (10, 300), 0.0),
    ],
)
def test_difference_test_matches_scipy_normal(
    cand: tuple[int, int], stable: tuple[int, int], margin: float
) -> None:
    (xc, nc), (xs, ns) = cand, stable
    pc, ps = xc / nc, xs / ns
    se = math.sqrt(pc * (1 - pc) / nc + ps * (1 - ps) / ns)
    z = (pc - ps - margin) / se
    result = difference_test(Proportion(xc, nc), Proportion(xs, ns), margin)
    assert result.p_below == pytest.approx(sps.norm.cdf(z), rel=1e-9)
    assert result.p_above == pytest.approx(sps.norm.sf(z), rel=1e-6)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    # rank 99 lies in (0.2, 0.5] holding counts 90..100: 0.2 + 0.3 * 9/10.
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.47)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]) is None
    # Ranks in the +Inf bucket answer the largest finite bound.
    assert histogram_quantile(0.99, [(0.1, 10.0), (math.inf, 20.0)]) == pytest.approx(0.1)


def test_durations_and_times() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="invalid duration '5 minutes'"):
        parse_duration("5 minutes")
    text = "2026-11-26T12:00:01.500Z"
    assert format_time(parse_time(text)) == text
    assert parse_time("2026-11-26T12:00:01Z").tzinfo is not None


def test_a_rate_above_one_is_tested_not_a_math_error() -> None:
    # One recommendation can earn several hits (a session watching two of its titles), so a
    # window's hit rate can pass 1; the test must still answer.
    result = difference_test(Proportion(200, 169), Proportion(0, 150), margin=-0.03)
    assert result.difference > 1.0
    assert result.p_above == 0.0  # clearly above the margin
