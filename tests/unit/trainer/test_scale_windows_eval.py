"""The streaming pipeline's pieces without Ray: training windows of a block of user rows,
and evaluation over a prepared snapshot in batches, on a user subsample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops_contracts.training import EvaluationProtocol
from recops_trainer import prepared as prep
from recops_trainer.config import DatasetFormat, DatasetSource
from recops_trainer.evaluate import Stage
from recops_trainer.scale_eval import evaluate_prepared
from recops_trainer.scale_train import window_batch
from recops_trainer.synthetic_archives import SyntheticSize, write_ml1b_tar

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


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scale-eval")
    archive = write_ml1b_tar(root / "ml1b.tar", SyntheticSize(users=120, items=97), shards=2)
    source = DatasetSource(format=DatasetFormat.MOVIELENS_1B)
    prep.prepare(source, archive, root / "prepared")
    return root / "prepared"


def _oracle(folder: Path, stage: Stage) -> object:
    """Scores every user's held-out item highest: a perfect model."""
    snapshot = prep.to_snapshot(folder)
    offset = 2 if stage == Stage.VALID else 1

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(users), snapshot.num_items + 1), np.float32)
        for row, user in enumerate(users):
            scores[row, snapshot.sequences[user - 1][-offset]] = 1.0
        return scores

    return score


@pytest.mark.parametrize("stage", [Stage.VALID, Stage.TEST])
def test_a_perfect_scorer_ranks_first_under_both_protocols(prepared: Path, stage: Stage) -> None:
    result = evaluate_prepared(
        prepared,
        _oracle(prepared, stage),  # type: ignore[arg-type]
        maxlen=10,
        stage=stage,
    )
    for protocol in (EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL):
        assert result[protocol.value]["ndcg@10"] == pytest.approx(1.0)
        assert result[protocol.value]["users"] == 120


def test_a_subsample_is_seeded_and_recorded(prepared: Path) -> None:
    def constant(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), 98), np.float32)

    a = evaluate_prepared(prepared, constant, maxlen=10, users=30, seed=3)
    b = evaluate_prepared(prepared, constant, maxlen=10, users=30, seed=3)
    assert a == b
    assert a["full"]["users"] == 30
    assert a["full"]["subsample"] == {"users": 30, "of": 120}
