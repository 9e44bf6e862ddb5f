"""The streaming pipeline's Ray Data step without Ray: training windows of a block of user
rows."""

from __future__ import annotations

import numpy as np

from recops_trainer.distributed.windows import window_batch

NUM_ITEMS = 40


def _block() -> dict[str, object]:
    items = [np.arange(1, 8), np.arange(3, 5), np.arange(10, 13), np.arange(20, 40)]
    return {"user": np.array([5, 6, 7, 8]), "items": np.array(items, dtype=object)}


def test_windows_follow_the_leave_one_out_split_and_drop_users_with_nothing_to_learn() -> None:
    out = window_batch(
        _block(),
        maxlen=6,
        num_users=10,
        num_items=NUM_ITEMS,
        sse_user=0.0,
        sse_item=0.0,
        negatives=2,
        seed=1,
    )
    # User 7 has 3 items: one to train on, nothing to predict; user 6 keeps both (< 3).
    assert out["user"].tolist() == [5, 6, 8]
    assert out["seq"].shape == (3, 6) and out["neg"].shape == (3, 6, 2)
    # User 5 trains on 1..5 (6 and 7 are held out): inputs 1..4, targets 2..5.
    assert out["seq"][0].tolist() == [0, 0, 1, 2, 3, 4]
    assert out["pos"][0].tolist() == [0, 0, 2, 3, 4, 5]
    # User 8's window is the last maxlen + 1 of its training items (20..37).
    assert out["seq"][2].tolist() == list(range(31, 37))
    for row, own in enumerate([np.arange(1, 6), np.arange(3, 5), np.arange(20, 38)]):
        negatives = out["neg"][row][out["pos"][row] != 0]
        assert negatives.size and not np.isin(negatives, own).any()


def test_user_sse_draws_from_the_whole_id_range() -> None:
    out = window_batch(
        _block(),
        maxlen=6,
        num_users=10_000,
        num_items=NUM_ITEMS,
        sse_user=1.0,
        sse_item=0.0,
        negatives=1,
        seed=1,
    )
    assert (out["user"] >= 1).all() and (out["user"] <= 10_000).all()
    assert out["user"].tolist() != [5, 6, 8]
