"""Evaluation over a prepared snapshot, row group by row group in batches, on a user
subsample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops_contracts.training import DatasetFormat, DatasetSource, EvaluationProtocol
from recops_trainer.data import prepared as prep
from recops_trainer.data.synthetic_archives import SyntheticSize, write_ml1b_tar
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.evaluation.prepared import PreparedUsers
from recops_trainer.evaluation.users import Stage


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
    result = evaluate(
        PreparedUsers(prepared),
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

    a = evaluate(PreparedUsers(prepared), constant, maxlen=10, limit=30, seed=3)
    b = evaluate(PreparedUsers(prepared), constant, maxlen=10, limit=30, seed=3)
    assert a == b
    assert a["full"]["users"] == 30
    assert a["full"]["subsample"] == {"users": 30, "of": 120}
