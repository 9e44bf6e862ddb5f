"""Cutting a length-sorted batch into groups where fewer padded positions pay off."""

from __future__ import annotations

from recops_runtime.scoring.model_version import split_by_length


def test_equal_lengths_stay_one_call() -> None:
    assert split_by_length([64] * 16, per_call=1e-4, per_position=1e-6) == [16]


def test_a_few_long_histories_get_their_own_call() -> None:
    lengths = [16] * 14 + [200, 200]
    assert split_by_length(lengths, per_call=1e-4, per_position=5e-6) == [14, 16]


def test_expensive_calls_keep_the_batch_whole() -> None:
    lengths = [16] * 14 + [200, 200]
    assert split_by_length(lengths, per_call=1.0, per_position=5e-6) == [16]
