"""Leave-one-out split: last item test, second to last validation, the rest training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recops_trainer.data.snapshot import Snapshot

Ints = npt.NDArray[np.int64]


@dataclass
class Split:
    """Per internal user ``u`` (index ``u - 1``): training items, validation and test item.

    Users with fewer than 3 interactions keep everything for training and have no
    validation or test item (0), as in the SSE-PT reference.
    """

    train: list[Ints]
    valid: Ints
    test: Ints
    num_users: int
    num_items: int

    def train_keys(self) -> Ints:
        """Sorted ``user * (num_items + 1) + item`` of every training interaction."""
        width = self.num_items + 1
        keys = [u * width + seq for u, seq in enumerate(self.train, start=1)]
        return np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.int64)

    def interacted(self, user: int) -> Ints:
        """Every item the user ever interacted with (train, validation and test)."""
        extra = [i for i in (self.valid[user - 1], self.test[user - 1]) if i]
        return np.concatenate([self.train[user - 1], np.asarray(extra, np.int64)])

    def item_counts(self) -> Ints:
        """Training interactions per internal item (index 0 unused)."""
        counts = np.bincount(np.concatenate(self.train), minlength=self.num_items + 1)
        return counts.astype(np.int64)


def leave_one_out(snapshot: Snapshot) -> Split:
    train: list[Ints] = []
    valid = np.zeros(snapshot.num_users, np.int64)
    test = np.zeros(snapshot.num_users, np.int64)
    for index, seq in enumerate(snapshot.sequences):
        if len(seq) < 3:
            train.append(seq.astype(np.int64))
            continue
        train.append(seq[:-2].astype(np.int64))
        valid[index] = seq[-2]
        test[index] = seq[-1]
    return Split(train, valid, test, snapshot.num_users, snapshot.num_items)


def history_matrix(sequences: list[Ints], maxlen: int) -> Ints:
    """Left-padded ``[len(sequences), maxlen]`` matrix of each sequence's last items."""
    out = np.zeros((len(sequences), maxlen), np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-maxlen:]
        if len(tail):
            out[row, maxlen - len(tail) :] = tail
    return out
