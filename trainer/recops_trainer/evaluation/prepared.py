"""The held-out users of a prepared snapshot, read row group by row group in bounded memory.

The evaluator's source (``evaluation.users.EvalUsers``) for a large catalogue: users are
read from the Parquet parts a row group at a time and scored in batches sized so that one
batch's scores stay under ``SCORE_BYTES``. A ``limit`` is a seeded subsample of that many
user ids, for quick validation; the result records how many users were drawn out of how
many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recops_trainer.data.prepared.reader import iter_rows, read_manifest
from recops_trainer.evaluation.users import EvalBatch, Ints, Stage

# The float32 score matrix of one batch stays under this.
SCORE_BYTES = 64 << 20


def _rows(folder: Path, chosen: Ints | None) -> Iterator[tuple[Ints, list[Ints]]]:
    """(user ids, item sequences) of the chosen users (all when None), row group by group."""
    for table in iter_rows(folder):
        users = table.column("user").to_numpy().astype(np.int64)
        lists = table.column("items").combine_chunks()
        offsets = lists.offsets.to_numpy()
        values = lists.values.to_numpy().astype(np.int64)
        rows = np.arange(len(users)) if chosen is None else np.flatnonzero(np.isin(users, chosen))
        yield users[rows], [values[offsets[r] : offsets[r + 1]] for r in rows]


def _held_out(sequences: list[Ints], stage: Stage) -> tuple[list[Ints], Ints, list[Ints]]:
    """(inputs, targets, every item of the user) of users with 3 or more interactions."""
    inputs, targets, everything = [], [], []
    for seq in sequences:
        if len(seq) < 3:
            continue
        if stage == Stage.VALID:
            inputs.append(seq[:-2])
            targets.append(seq[-2])
        else:
            inputs.append(seq[:-1])
            targets.append(seq[-1])
        everything.append(seq)
    return inputs, np.asarray(targets, np.int64), everything


class PreparedUsers:
    """The users of a prepared folder with 3 or more interactions, row group by row group.

    Scores are compared in float32, the model's own dtype: a batch over a large catalogue
    is sized by its float32 bytes (``SCORE_BYTES``), and a float64 copy would double it.
    No process holds every user's items, so the sampled protocol's negatives avoid each
    batch's own users' items (the row's position in the batch names its owner). Ranking
    metrics only: the result carries the subsample instead of the beyond-accuracy metrics.
    """

    score_dtype: ClassVar[type[np.floating[Any]]] = np.float32
    beyond_accuracy: ClassVar[bool] = False

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        stats = read_manifest(self.folder)["stats"]
        self.num_users = int(stats["users"])
        self.num_items = int(stats["items"])

    def _chosen(self, limit: int | None, seed: int) -> Ints | None:
        if limit is None or limit >= self.num_users:
            return None
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(np.arange(1, self.num_users + 1), size=limit, replace=False))

    def batches(
        self, stage: Stage, limit: int | None, seed: int, batch_size: int
    ) -> Iterator[EvalBatch]:
        width = self.num_items + 1
        batch = max(1, min(batch_size, SCORE_BYTES // (4 * width)))
        for row_ids, sequences in _rows(self.folder, self._chosen(limit, seed)):
            keep = np.asarray([len(s) >= 3 for s in sequences], bool)
            inputs, targets, everything = _held_out(sequences, stage)
            ids = row_ids[keep]
            for start in range(0, len(ids), batch):
                chunk = slice(start, start + batch)
                history = inputs[chunk]
                owners = np.arange(len(history))
                keys = np.sort(
                    np.concatenate(
                        [o * width + s for o, s in zip(owners, everything[chunk], strict=True)]
                    )
                )
                yield EvalBatch(ids[chunk], history, targets[chunk], owners, keys)

    def item_counts(self) -> Ints:
        raise NotImplementedError("a prepared source reports ranking metrics only")

    def recorded(self, limit: int | None) -> dict[str, Any]:
        drawn = limit if limit is not None and limit < self.num_users else None
        return {"subsample": {"users": drawn, "of": self.num_users}}
