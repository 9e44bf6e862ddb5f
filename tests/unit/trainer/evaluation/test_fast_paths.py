"""The faster paths of training and evaluation give the same numbers as the plain ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recops_trainer.data.split import Split, history_matrix
from recops_trainer.evaluation.evaluator import top_k
from recops_trainer.evaluation.scoring import model_scorer
from recops_trainer.model.network import SSEPT, ModelShape


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_is_a_stable_argsort_prefix(k: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 30))
        scores = rng.integers(-3, 3, size=(rows, cols)).astype(np.float64)  # many ties
        scores[rng.random((rows, cols)) < 0.3] = -np.inf
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_k(scores, k), expected)


def test_the_grouped_scorer_equals_the_untrimmed_forward(synthetic_split: Split) -> None:
    torch.manual_seed(0)
    shape = ModelShape(
        num_users=synthetic_split.num_users,
        num_items=synthetic_split.num_items,
        maxlen=16,
        item_dim=8,
        user_dim=4,
        num_heads=2,
    )
    model = SSEPT(shape).eval()
    users = np.arange(1, synthetic_split.num_users + 1)
    lengths = np.random.default_rng(1).integers(0, 17, size=len(users))
    histories = [
        synthetic_split.train[u - 1][-n:] if n else [] for u, n in zip(users, lengths, strict=True)
    ]
    matrix = history_matrix([np.asarray(h, np.int64) for h in histories], 16)
    grouped = model_scorer(model, batch_size=50, group_size=7)(users, matrix)
    with torch.no_grad():
        plain = model(torch.from_numpy(users), torch.from_numpy(matrix)).numpy()
    assert np.allclose(grouped, plain, atol=1e-5)
