"""Ranking metrics against hand-computed values, and the two evaluation protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recops_contracts.training import EvaluationProtocol
from recops_trainer.data.split import Split
from recops_trainer.evaluation import ranking as metrics
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.evaluation.users import Stage
from recops_trainer.model.baselines import Markov, Popularity


def test_ndcg_hr_mrr_by_hand() -> None:
    ranks = np.array([0, 1, 4, 10], np.int64)
    assert metrics.hr_at(ranks, 5) == pytest.approx(3 / 4)
    assert metrics.ndcg_at(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    assert metrics.ndcg_at(ranks, 1) == pytest.approx(1 / 4)
    assert metrics.mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 11) / 4)


def test_coverage_and_genre_diversity() -> None:
    lists = np.array([[1, 2], [2, 3]])
    assert metrics.coverage(lists, num_items=6) == pytest.approx(0.5)
    genres = {1: frozenset({"Drama"}), 2: frozenset({"Drama"}), 3: frozenset({"Comedy", "Drama"})}
    # list [1, 2]: identical genres -> 0; list [2, 3]: Jaccard 1/2 -> distance 0.5
    assert metrics.genre_diversity(lists, genres) == pytest.approx(0.25)


def oracle(targets: dict[int, int]):  # type: ignore[no-untyped-def]
    """Scores the held-out item of each user highest, the rest by item id."""

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        out = np.tile(np.arange(7, dtype=np.float32) / 10, (len(users), 1))
        for row, user in enumerate(users):
            out[row, targets[int(user)]] = 100.0
        return out

    return score


def test_perfect_scorer_is_perfect_in_both_protocols(tiny_split: Split) -> None:
    split = tiny_split
    result = evaluate(split, oracle({1: 5, 2: 6}), maxlen=4, stage=Stage.TEST)
    for protocol in ("sampled", "full"):
        assert result[protocol]["ndcg@10"] == 1.0
        assert result[protocol]["users"] == 2  # user 3 has no held-out item
        assert result[protocol]["protocol"] == protocol


def test_full_ranking_excludes_the_history(tiny_split: Split) -> None:
    split = tiny_split
    seen = {}

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        seen["history"] = history.copy()
        return np.tile(np.array([0, 9, 8, 7, 6, 1, 0], np.float32), (len(users), 1))

    result = evaluate(
        split, score, maxlen=4, stage=Stage.TEST, protocols=(EvaluationProtocol.FULL,)
    )
    # The test input includes the validation item, left-padded.
    assert seen["history"].tolist() == [[1, 2, 3, 4], [0, 2, 4, 5]]
    # User 1 saw 1-4: only item 6 (score 0) competes with item 5 (score 1) -> rank 0.
    # User 2 saw 2, 4, 5: items 1 and 3 score above item 6 -> rank 2.
    assert result["full"]["mrr"] == pytest.approx((1 + 1 / 3) / 2)


def test_sampled_negatives_are_never_items_the_user_had(tiny_split: Split) -> None:
    split = tiny_split

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), 7), np.float32)
        out[:, 6] = 1.0  # only item 6 beats anything
        return out

    result = evaluate(
        split, score, maxlen=4, stage=Stage.VALID, protocols=(EvaluationProtocol.SAMPLED,)
    )
    # User 1 (valid 4, had 1-5): negatives can only be item 6 -> always above -> rank 100.
    # User 2 (valid 5, had 2, 4, 5, 6): negatives from {1, 3} score 0 = target -> rank 0.
    assert result["sampled"]["hr@10"] == pytest.approx(0.5)


def test_baselines(tiny_split: Split) -> None:
    split = tiny_split
    pop = Popularity(split)(np.array([1]), np.zeros((1, 4), np.int64))
    assert pop[0, 2] == pop.max()  # item 2 has 2 training interactions
    assert pop[0, 0] == -np.inf
    markov = Markov(split)(np.array([1]), np.array([[0, 0, 0, 2]]))
    # 2 was followed by 3 (user 1) and by 4 (user 2): both above every other item.
    assert set(np.argsort(-markov[0])[:2].tolist()) == {3, 4}


def test_popularity_rank_measures_the_bias_towards_popular_items() -> None:
    from recops_trainer.evaluation.ranking import popularity_rank

    counts = np.array([0, 50, 40, 30, 20, 10])  # item 1 is the most popular, item 5 the least
    assert popularity_rank(np.array([[1, 1]]), counts) == 0.0
    assert popularity_rank(np.array([[5]]), counts) == 1.0
    assert popularity_rank(np.array([[1, 3, 5]]), counts) == pytest.approx(0.5)
    assert popularity_rank(np.array([[0, 0]]), counts) == 0.0  # padding only


def test_beyond_accuracy_metrics_are_reported_and_logged_flat() -> None:
    from recops_trainer.evaluation.evaluator import flat_metrics

    result = {
        "full": {
            "users": 10,
            "ndcg@10": 0.2,
            "coverage@10": 0.4,
            "popularity_rank@10": 0.3,
            "short_history": {"max_interactions": 5, "users": 2, "ndcg@10": 0.1, "hr@10": 0.5},
        }
    }
    assert flat_metrics(result, "test") == {
        "test_full_ndcg_at_10": 0.2,
        "test_full_coverage_at_10": 0.4,
        "test_full_popularity_rank_at_10": 0.3,
        "test_full_short_history_users": 2.0,
        "test_full_short_history_ndcg_at_10": 0.1,
        "test_full_short_history_hr_at_10": 0.5,
    }


def test_an_empty_group_logs_its_size_and_no_scores() -> None:
    from recops_trainer.evaluation.evaluator import flat_metrics

    empty = {"max_interactions": 2, "users": 0, "ndcg@10": 0.0, "hr@10": 0.0}
    result = {"full": {"users": 10, "ndcg@10": 0.2, "cold_start": empty}}
    assert flat_metrics(result, "test") == {
        "test_full_ndcg_at_10": 0.2,
        "test_full_cold_start_users": 0.0,
    }
