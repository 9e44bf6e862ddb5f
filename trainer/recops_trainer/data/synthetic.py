"""Synthetic interactions with real sequential structure, for tests and machines with no data.

Items fall into taste clusters with Zipf popularity inside each; every item has a few
likely successors. A user has one favourite cluster; each next item follows the last one's
successors, or the user's taste, or global popularity. A sequential model can learn the
transitions and the taste, which popularity alone cannot, so "beats popularity" is a real
check. Every snapshot made from it is labelled ``synthetic``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate(
    num_users: int = 300,
    num_items: int = 200,
    min_length: int = 8,
    max_length: int = 40,
    clusters: int = 8,
    successors: int = 3,
    p_transition: float = 0.6,
    p_taste: float = 0.3,
    seed: int = 0,
) -> pd.DataFrame:
    """Interactions as ``user``, ``item``, ``order`` (the readers' columns)."""
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, clusters, size=num_items)
    ranks = np.arange(1, num_items + 1, dtype=np.float64)
    popularity = 1.0 / ranks**1.1
    popularity /= popularity.sum()
    next_items = rng.integers(0, num_items, size=(num_items, successors))
    members = [np.flatnonzero(item_cluster == c) for c in range(clusters)]
    users, items, orders = [], [], []
    for user in range(num_users):
        taste = members[int(rng.integers(0, clusters))]
        if taste.size == 0:
            taste = np.arange(num_items)
        taste_weights = popularity[taste] / popularity[taste].sum()
        length = int(rng.integers(min_length, max_length + 1))
        seen: set[int] = set()
        current = int(rng.choice(num_items, p=popularity))
        for step in range(length):
            draw = rng.random()
            if step and draw < p_transition:
                candidate = int(next_items[current, rng.integers(0, successors)])
            elif draw < p_transition + p_taste:
                candidate = int(rng.choice(taste, p=taste_weights))
            else:
                candidate = int(rng.choice(num_items, p=popularity))
            if candidate in seen:  # implicit feedback: one interaction per item
                candidate = int(rng.choice(num_items, p=popularity))
                if candidate in seen:
                    continue
            seen.add(candidate)
            users.append(f"u{user + 1}")
            items.append(f"i{candidate + 1}")
            orders.append(step)
            current = candidate
    return pd.DataFrame({"user": users, "item": items, "order": np.asarray(orders, np.int64)})
