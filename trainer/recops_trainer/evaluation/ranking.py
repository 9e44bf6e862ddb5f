"""Ranking metrics from 0-based ranks of the held-out item (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
KS = (5, 10, 20)


def ndcg_at(ranks: Ints, k: int) -> float:
    """Mean NDCG@k with one relevant item: 1 / log2(rank + 2) when rank < k."""
    if len(ranks) == 0:
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(gains.mean())


def hr_at(ranks: Ints, k: int) -> float:
    if len(ranks) == 0:
        return 0.0
    return float((ranks < k).mean())


def mrr(ranks: Ints) -> float:
    if len(ranks) == 0:
        return 0.0
    return float((1.0 / (ranks + 1.0)).mean())


def ranking_metrics(ranks: Ints, ks: Sequence[int] = KS) -> dict[str, float]:
    """``ndcg@k``, ``hr@k`` for each k, and ``mrr``."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
        out[f"hr@{k}"] = hr_at(ranks, k)
    out["mrr"] = mrr(ranks)
    return out


def coverage(top_lists: Ints, num_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    if num_items == 0:
        return 0.0
    return float(len(np.unique(top_lists[top_lists > 0])) / num_items)


def popularity_rank(top_lists: Ints, item_counts: Ints) -> float:
    """Popularity bias: the mean popularity rank of the recommended items, as a share of
    the catalogue (0: only the most popular item; about 0.5: no preference for popular
    items). ``item_counts[i]`` is item ``i``'s training interactions (index 0 unused)."""
    items = top_lists[top_lists > 0]
    if items.size == 0:
        return 0.0
    order = np.argsort(-item_counts[1:], kind="stable")
    rank = np.empty(order.size, dtype=np.float64)
    rank[order] = np.arange(order.size) / max(1, order.size - 1)
    return float(rank[items - 1].mean())


def intra_list_diversity(items: Sequence[int], genres: Mapping[int, frozenset[str]]) -> float:
    """Mean pairwise genre distance (1 - Jaccard) of a list; items without genres are skipped."""
    known = [genres[i] for i in items if genres.get(i)]
    pairs = list(combinations(known, 2))
    if not pairs:
        return 0.0
    distances = [1.0 - len(a & b) / len(a | b) for a, b in pairs]
    return float(np.mean(distances))


def genre_diversity(top_lists: Ints, genres: Mapping[int, frozenset[str]]) -> float:
    """Mean intra-list genre diversity over users' lists."""
    if len(top_lists) == 0:
        return 0.0
    return float(np.mean([intra_list_diversity(row.tolist(), genres) for row in top_lists]))
