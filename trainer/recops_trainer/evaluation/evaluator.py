"""Offline evaluation under two protocols, always labelled.

- ``sampled``: as the SSE-PT reference: the held-out item ranked against 100 items drawn
  uniformly (with replacement) from items the user never interacted with; the test input
  includes the validation item.
- ``full``: the held-out item ranked against every item, the user's history excluded.

Both use the same held-out items, and the same seeded negatives for every model, so
models compare fairly within a protocol (never across them). One evaluator reads every
source of users (``evaluation.users``): an in-memory split, or a prepared folder row
group by row group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_contracts.tracking import Stage as TrackedStage, metric_key
from recops_contracts.training import EvaluationProtocol
from recops_trainer.data.sampler import sample_outside
from recops_trainer.data.split import Split, history_matrix
from recops_trainer.evaluation import ranking as metrics
from recops_trainer.evaluation.users import EvalUsers, Ints, Scorer, SplitUsers, Stage

SAMPLED_NEGATIVES = 100
COLD_START_MAX = 10
# Users with at most this many interactions: where a sequence model has least to go on.
SHORT_HISTORY_MAX = 5
# Nested groups of a protocol's metrics that are logged flat (``short_history_ndcg@10``).
GROUPS = ("cold_start", "short_history")


def top_k(scores: npt.NDArray[np.floating[Any]], k: int) -> Ints:
    """Per row, the columns of the ``k`` highest scores, best first, ties by lower column:
    ``np.argsort(-scores, axis=1, kind="stable")[:, :k]`` without sorting whole rows."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    # Every score above the k-th, then the tied ones in column order until k are taken.
    need = k - above.sum(1, keepdims=True)
    take = above | (tied & (np.cumsum(tied, axis=1) <= need))
    columns = np.nonzero(take)[1].reshape(len(scores), k)
    order = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1).astype(np.int64)


def evaluate(
    source: Split | EvalUsers,
    scorer: Scorer,
    *,
    maxlen: int,
    stage: Stage = Stage.TEST,
    protocols: tuple[EvaluationProtocol, ...] = (
        EvaluationProtocol.SAMPLED,
        EvaluationProtocol.FULL,
    ),
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    genres: Mapping[int, frozenset[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per protocol: ``{"sampled": {...}, "full": {...}}``.

    ``source`` is a split (read as ``SplitUsers``) or any ``EvalUsers``; ``limit`` users at
    most, drawn with ``seed`` as the source draws them.
    """
    users = SplitUsers(source) if isinstance(source, Split) else source
    rng = np.random.default_rng(seed + 1)
    ranks: dict[EvaluationProtocol, list[Ints]] = {p: [] for p in protocols}
    tops: list[Ints] = []
    interactions: list[Ints] = []
    for batch in users.batches(stage, limit, seed, batch_size):
        rows = np.arange(len(batch.users))
        scores = np.asarray(
            scorer(batch.users, history_matrix(batch.inputs, maxlen)), users.score_dtype
        )
        target_scores = scores[rows, batch.targets]
        if EvaluationProtocol.SAMPLED in ranks:
            negatives = sample_outside(
                rng, batch.owners, batch.keys, (len(rows), SAMPLED_NEGATIVES), users.num_items
            )
            negative_scores = np.take_along_axis(scores, negatives, axis=1)
            ranks[EvaluationProtocol.SAMPLED].append(
                (negative_scores > target_scores[:, None]).sum(1).astype(np.int64)
            )
        if EvaluationProtocol.FULL in ranks:
            # In place: the scores are this call's own (a fresh array from the scorer, or
            # its float64 copy), and the sampled protocol has read what it needs.
            scores[:, 0] = -np.inf
            for row, history in enumerate(batch.inputs):
                scores[row, history] = -np.inf
            ranks[EvaluationProtocol.FULL].append(
                (scores > target_scores[:, None]).sum(1).astype(np.int64)
            )
            if users.beyond_accuracy:
                tops.append(top_k(scores, 10))
        if batch.interactions is not None:
            interactions.append(batch.interactions)
    extra = users.recorded(limit)
    result: dict[str, dict[str, Any]] = {}
    for protocol, parts in ranks.items():
        all_ranks = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        out: dict[str, Any] = {
            "protocol": protocol.value,
            "stage": stage.value,
            "users": len(all_ranks),
            **extra,
            **metrics.ranking_metrics(all_ranks),
        }
        if users.beyond_accuracy:
            lengths = np.concatenate(interactions) if interactions else np.zeros(0, np.int64)
            out |= _groups(all_ranks, lengths)
            if protocol == EvaluationProtocol.FULL and tops:
                top = np.concatenate(tops)
                out["coverage@10"] = metrics.coverage(top, users.num_items)
                out["popularity_rank@10"] = metrics.popularity_rank(top, users.item_counts())
                if genres:
                    out["genre_diversity@10"] = metrics.genre_diversity(top, genres)
        result[protocol.value] = out
    return result


def _groups(ranks: Ints, interactions: Ints) -> dict[str, dict[str, Any]]:
    """NDCG and HR at 10 of the users with few interactions (``GROUPS``)."""
    out: dict[str, dict[str, Any]] = {}
    for group, most in zip(GROUPS, (COLD_START_MAX, SHORT_HISTORY_MAX), strict=True):
        members = interactions <= most
        out[group] = {
            "max_interactions": most,
            "users": int(members.sum()),
            "ndcg@10": metrics.ndcg_at(ranks[members], 10),
            "hr@10": metrics.hr_at(ranks[members], 10),
        }
    return out


def flat_metrics(result: Mapping[str, Mapping[str, Any]], prefix: TrackedStage) -> dict[str, float]:
    """MLflow names (``recops_contracts.tracking.metric_key``) of the numeric metrics; a
    group's size is logged (``test_full_cold_start_users``), its scores only when it has
    users."""
    out: dict[str, float] = {}
    for protocol, values in result.items():
        flat = dict(values)
        for group in GROUPS:
            inner = flat.pop(group, None) or {}
            if "users" in inner:
                flat[f"{group}_users"] = inner["users"]
            if inner.get("users") == 0:
                continue  # no users, no measurement: a 0.0 would read as one
            for name in ("ndcg@10", "hr@10"):
                if name in inner:
                    flat[f"{group}_{name}"] = inner[name]
        for name, value in flat.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and name != "users":
                out[metric_key(prefix, protocol, name)] = float(value)
    return out
