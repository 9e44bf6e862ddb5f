"""Which users an evaluation reads and how their candidates are read: the evaluator's source.

``evaluate`` ranks the held-out item of each user a source yields, batch by batch, under
both protocols; a source says which users, their inputs and held-out items, the pairs
their sampled negatives must avoid, and the properties that differ between the in-memory
split (``SplitUsers``, here) and a prepared folder read row group by row group
(``evaluation.prepared.PreparedUsers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from recops_trainer.data.split import Split

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
# scores [B, num_items + 1] for users [B] and left-padded histories [B, maxlen]; a fresh
# array each call (the evaluator masks the full protocol's exclusions into it in place)
Scorer = Callable[[Ints, Ints], Floats]


class Stage(StrEnum):
    VALID = "valid"
    TEST = "test"


@dataclass
class EvalBatch:
    """One batch of users to rank, as the scorer and the protocols read it."""

    users: Ints  # the ids the scorer gets
    inputs: list[Ints]  # each user's input history; the full protocol excludes these items
    targets: Ints  # the held-out items
    # The sampled protocol's negatives avoid every pair in ``keys`` (sorted
    # ``owner * (num_items + 1) + item`` codes), ``owners`` naming each row's owner.
    owners: Ints
    keys: Ints
    interactions: Ints | None = None  # each user's item count in all, for the history groups


class EvalUsers(Protocol):
    """Where an evaluation's users come from (see the module docstring)."""

    num_items: int
    # The dtype scores are compared in (a property of the source: see each source).
    score_dtype: ClassVar[type[np.floating[Any]]]
    # Whether the result carries the beyond-accuracy metrics: the cold-start and
    # short-history groups, and from the full protocol's top 10, coverage, popularity
    # bias and genre diversity (then every batch carries ``interactions``).
    beyond_accuracy: ClassVar[bool]

    def batches(
        self, stage: Stage, limit: int | None, seed: int, batch_size: int
    ) -> Iterator[EvalBatch]:
        """The users to rank; at most ``limit`` of them, drawn with ``seed``, when given."""
        ...

    def item_counts(self) -> Ints:
        """Training interactions per item (popularity), where ``beyond_accuracy``."""
        ...

    def recorded(self, limit: int | None) -> dict[str, Any]:
        """Fields every protocol's result carries beside its metrics."""
        ...


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


class SplitUsers:
    """The held-out users of an in-memory split, in id order.

    Scores are compared in float64, as this path always has: the widening is exact for
    the float32 scorers here, and a scorer of its own in float64 keeps its precision (the
    memory is a batch of 256 users over a catalogue held in memory anyway). The sampled
    protocol's negatives avoid every pair of the data, held-out items included, through
    one sorted key table for all batches; the result carries the beyond-accuracy metrics.
    """

    score_dtype: ClassVar[type[np.floating[Any]]] = np.float64
    beyond_accuracy: ClassVar[bool] = True

    def __init__(self, split: Split) -> None:
        self.split = split
        self.num_items = split.num_items

    def batches(
        self, stage: Stage, limit: int | None, seed: int, batch_size: int
    ) -> Iterator[EvalBatch]:
        split = self.split
        users = eval_users(split, stage, limit, seed)
        keys = all_keys(split)
        interactions = np.asarray([len(split.interacted(int(u))) for u in users], np.int64)
        for start in range(0, len(users), batch_size):
            chunk = users[start : start + batch_size]
            if stage == Stage.VALID:
                inputs = [split.train[u - 1] for u in chunk]
                targets = split.valid[chunk - 1]
            else:
                inputs = [np.append(split.train[u - 1], split.valid[u - 1]) for u in chunk]
                targets = split.test[chunk - 1]
            yield EvalBatch(
                chunk, inputs, targets, chunk, keys, interactions[start : start + batch_size]
            )

    def item_counts(self) -> Ints:
        return self.split.item_counts()

    def recorded(self, limit: int | None) -> dict[str, Any]:
        return {}
