"""Baselines scored in the same harness as the model: most-popular and item-to-item Markov."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import sparse

from recops_trainer.data.split import Split

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


class Popularity:
    """Scores every item by its training interaction count."""

    name = "pop"

    def __init__(self, split: Split) -> None:
        self.scores = split.item_counts().astype(np.float32)
        self.scores[0] = -np.inf

    def __call__(self, users: Ints, history: Ints) -> Floats:
        return np.broadcast_to(self.scores, (len(users), len(self.scores))).copy()


class Markov:
    """First-order item-to-item transitions from the last history item.

    Scores are transition counts from the last item, with popularity as a tie-breaker
    (scaled below one count), so an item never followed still ranks by popularity.
    """

    name = "markov"

    def __init__(self, split: Split) -> None:
        size = split.num_items + 1
        sources = np.concatenate([s[:-1] for s in split.train if len(s) > 1])
        targets = np.concatenate([s[1:] for s in split.train if len(s) > 1])
        ones = np.ones(len(sources), np.float32)
        self.transitions = sparse.csr_matrix((ones, (sources, targets)), shape=(size, size))
        popularity = split.item_counts().astype(np.float32)
        self.prior = 0.5 * popularity / max(float(popularity.max()), 1.0)
        self.prior[0] = -np.inf

    def __call__(self, users: Ints, history: Ints) -> Floats:
        last = history[:, -1]
        counts = np.asarray(self.transitions[last].todense(), dtype=np.float32)
        return counts + self.prior[None, :]
