"""Offline evaluation under two protocols, always labelled.

- ``sampled``: as the SSE-PT reference: the held-out item ranked against 100 items drawn
  uniformly (with replacement) from items the user never interacted with; the test input
  includes the validation item.
- ``full``: the held-out item ranked against every item, the user's history excluded.

Both use the same held-out items, and the same seeded negatives for every model, so
models compare fairly within a protocol (never across them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_contracts.tracking import Stage as TrackedStage, metric_key
from recops_contracts.training import EvaluationProtocol
from recops_trainer import metrics
from recops_trainer.sampler import sample_outside
from recops_trainer.split import Split, history_matrix

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
# scores [B, num_items + 1] for users [B] and left-padded histories [B, maxlen]
Scorer = Callable[[Ints, Ints], Floats]

SAMPLED_NEGATIVES = 100
COLD_START_MAX = 10
# Users with at most this many interactions: where a sequence model has least to go on.
SHORT_HISTORY_MAX = 5
# Nested groups of a protocol's metrics that are logged flat (``short_history_ndcg@10``).
GROUPS = ("cold_start", "short_history")


class Stage(StrEnum):
    VALID = "valid"
    TEST = "test"


def _inputs(split: Split, users: Ints, stage: Stage) -> tuple[list[Ints], Ints]:
    if stage == Stage.VALID:
        return [split.train[u - 1] for u in users], split.valid[users - 1]
    histories = [np.append(split.train[u - 1], split.valid[u - 1]) for u in users]
    return histories, split.test[users - 1]


def eval_users(split: Split, stage: Stage, limit: int | None = None, seed: int = 0) -> Ints:
    """Users with training items and a held-out item; a seeded sample when over ``limit``."""
    held = split.valid if stage == Stage.VALID else split.test
    lengths = np.asarray([len(s) for s in split.train])
    users = np.flatnonzero((held > 0) & (lengths > 0)) + 1
    if limit is not None and len(users) > limit:
        users = np.sort(np.random.default_rng(seed).choice(users, size=limit, replace=False))
    return users.astype(np.int64)


def all_keys(split: Split) -> Ints:
    """Sorted codes of every (user, item) pair of the data, held-out items included."""
    width = split.num_items + 1
    users = np.arange(1, split.num_users + 1)
    extra = np.concatenate([users * width + split.valid, users * width + split.test])[
        np.concatenate([split.valid, split.test]) > 0
    ]
    return np.sort(np.concatenate([split.train_keys(), extra]))


def top_k(scores: npt.NDArray[np.float64], k: int) -> Ints:
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
    split: Split,
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
    """Metrics per protocol: ``{"sampled": {...}, "full": {...}}``."""
    users = eval_users(split, stage, limit, seed)
    keys = all_keys(split)
    rng = np.random.default_rng(seed + 1)
    total_lengths = np.asarray([len(split.interacted(int(u))) for u in users])
    ranks: dict[EvaluationProtocol, list[Ints]] = {p: [] for p in protocols}
    tops: list[Ints] = []
    for start in range(0, len(users), batch_size):
        chunk = users[start : start + batch_size]
        histories, targets = _inputs(split, chunk, stage)
        matrix = history_matrix(histories, maxlen)
        scores = np.asarray(scorer(chunk, matrix), dtype=np.float64)
        target_scores = scores[np.arange(len(chunk)), targets]
        if EvaluationProtocol.SAMPLED in ranks:
            negatives = sample_outside(
                rng, chunk, keys, (len(chunk), SAMPLED_NEGATIVES), split.num_items
            )
            negative_scores = np.take_along_axis(scores, negatives, axis=1)
            ranks[EvaluationProtocol.SAMPLED].append(
                (negative_scores > target_scores[:, None]).sum(1).astype(np.int64)
            )
        if EvaluationProtocol.FULL in ranks:
            masked = scores.copy()
            masked[:, 0] = -np.inf
            for row, history in enumerate(histories):
                masked[row, history] = -np.inf
            ranks[EvaluationProtocol.FULL].append(
                (masked > target_scores[:, None]).sum(1).astype(np.int64)
            )
            tops.append(top_k(masked, 10))
    cold = total_lengths <= COLD_START_MAX
    short = total_lengths <= SHORT_HISTORY_MAX
    result: dict[str, dict[str, Any]] = {}
    for protocol, parts in ranks.items():
        all_ranks = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        out: dict[str, Any] = {
            "protocol": protocol.value,
            "stage": stage.value,
            "users": len(all_ranks),
            **metrics.ranking_metrics(all_ranks),
            "cold_start": {
                "max_interactions": COLD_START_MAX,
                "users": int(cold.sum()),
                "ndcg@10": metrics.ndcg_at(all_ranks[cold], 10),
                "hr@10": metrics.hr_at(all_ranks[cold], 10),
            },
            "short_history": {
                "max_interactions": SHORT_HISTORY_MAX,
                "users": int(short.sum()),
                "ndcg@10": metrics.ndcg_at(all_ranks[short], 10),
                "hr@10": metrics.hr_at(all_ranks[short], 10),
            },
        }
        if protocol == EvaluationProtocol.FULL and tops:
            top = np.concatenate(tops)
            out["coverage@10"] = metrics.coverage(top, split.num_items)
            out["popularity_rank@10"] = metrics.popularity_rank(top, split.item_counts())
            if genres:
                out["genre_diversity@10"] = metrics.genre_diversity(top, genres)
        result[protocol.value] = out
    return result


def flat_metrics(result: Mapping[str, Mapping[str, Any]], prefix: TrackedStage) -> dict[str, float]:
    """MLflow names (``recops_contracts.tracking.metric_key``) of the numeric metrics."""
    out: dict[str, float] = {}
    for protocol, values in result.items():
        flat = dict(values)
        for group in GROUPS:
            inner = flat.pop(group, None) or {}
            for name in ("ndcg@10", "hr@10"):
                if name in inner:
                    flat[f"{group}_{name}"] = inner[name]
        for name, value in flat.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and name != "users":
                out[metric_key(prefix, protocol, name)] = float(value)
    return out
