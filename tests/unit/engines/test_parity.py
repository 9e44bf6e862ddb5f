"""Parity metrics on hand-computed cases, and the gate's message."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recops_runtime.engines.errors import ParityError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.padding import trim_leading_padding
from recops_runtime.engines.parity import check, compare, ndcg10
from recops_runtime.engines.targets import FP32_PARITY, INT8_PARITY

ITEMS = 30


def _users(targets: list[int], seen: list[list[int]]) -> UserSequences:
    history = np.zeros((len(targets), 4), np.int64)
    for row, items in enumerate(seen):
        history[row, 4 - len(items) :] = items
    return UserSequences(np.arange(1, len(targets) + 1), history, np.asarray(targets))


def _scores(rows: int) -> np.ndarray:
    # Item j scores ITEMS - j: item 1 ranks first.
    return np.tile(np.arange(ITEMS + 1, 0, -1, dtype=np.float32), (rows, 1))


def test_identical_scores_have_full_overlap_and_no_change() -> None:
    users = _users([3, 12], [[1], [2, 5]])
    result = compare(_scores(2), _scores(2), users)
    assert result.top10_overlap == 1.0
    assert result.max_abs_diff == 0.0
    assert result.ndcg10_delta == 0.0
    # user 1: item 1 seen, item 3 ranks 2nd among unseen -> 1/log2(3); user 2: items 2, 5
    # seen, item 12 ranks 10th -> 1/log2(11).
    expected = (1 / math.log2(3) + 1 / math.log2(11)) / 2
    assert result.ndcg10_reference == pytest.approx(expected)
    assert ndcg10(_scores(2), users) == pytest.approx(expected)


def test_swapping_one_top_item_for_an_outsider_costs_a_tenth() -> None:
    users = _users([3], [[1]])
    engine = _scores(1)
    engine[0, 20] = engine[0, 2] + 100.0  # item 20 jumps to the top; item 11 drops out
    result = compare(_scores(1), engine, users)
    assert result.top10_overlap == pytest.approx(0.9)
    assert result.ndcg10_engine == pytest.approx(1 / math.log2(4))  # item 3 now 3rd
    assert result.ndcg10_delta == pytest.approx(1 / math.log2(4) - 1 / math.log2(3))


def test_the_gate_names_every_broken_limit() -> None:
    users = _users([3], [[1]])
    engine = _scores(1)
    engine[0, 20] = 1000.0
    result = compare(_scores(1), engine, users)
    check(result, INT8_PARITY.__class__(0.5, 0.5), "edge-int8")
    with pytest.raises(ParityError) as caught:
        check(result, FP32_PARITY, "cpu-openvino")
    message = str(caught.value)
    assert "cpu-openvino engine fails parity" in message
    assert "top-10 overlap 0.9000 < 0.99" in message
    assert "max score difference" in message
    assert "No engine was written" in message


def test_non_finite_scores_fail_parity() -> None:
    engine = _scores(1)
    engine[0, 4] = np.nan
    with pytest.raises(ParityError, match="NaN"):
        compare(_scores(1), engine, _users([3], [[1]]))


def test_leading_padding_is_trimmed_to_a_bucket() -> None:
    history = np.zeros((2, 64), np.int64)
    history[0, -5:] = 7
    history[1, -20:] = 3
    assert trim_leading_padding(history, bucket=16).shape == (2, 32)
    assert trim_leading_padding(np.zeros((1, 64), np.int64), bucket=16).shape == (1, 16)
    full = np.ones((1, 64), np.int64)
    assert trim_leading_padding(full, bucket=16).shape == (1, 64)
