"""Offline evaluation over a prepared snapshot, row group by row group, in bounded memory.

The same two protocols as ``evaluate`` (leave-one-out held-out items; ``sampled``: 100
uniform negatives the user never had; ``full``: every item, the history excluded), over
a large catalogue: users are read from the Parquet parts a row group at a time and scored
in batches sized so that one batch's scores stay under ``SCORE_BYTES``. ``users`` limits
the run to a seeded subsample of that many users, for quick validation; the result
records how many users were evaluated out of how many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_contracts.training import EvaluationProtocol
from recops_trainer import metrics
from recops_trainer.evaluate import SAMPLED_NEGATIVES, Scorer, Stage
from recops_trainer.prepared import iter_rows, read_manifest
from recops_trainer.sampler import sample_outside
from recops_trainer.split import history_matrix

Ints = npt.NDArray[np.int64]

# The float32 score matrix of one batch stays under this.
SCORE_BYTES = 64 << 20
MAX_BATCH = 256


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


def evaluate_prepared(
    folder: Path,
    scorer: Scorer,
    *,
    maxlen: int,
    stage: Stage = Stage.TEST,
    protocols: tuple[EvaluationProtocol, ...] = (
        EvaluationProtocol.SAMPLED,
        EvaluationProtocol.FULL,
    ),
    users: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Metrics per protocol, as ``evaluate`` returns them, plus ``subsample``."""
    manifest = read_manifest(folder)
    num_users = int(manifest["stats"]["users"])
    num_items = int(manifest["stats"]["items"])
    chosen = None
    if users is not None and users < num_users:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(np.arange(1, num_users + 1), size=users, replace=False))
    batch = max(1, min(MAX_BATCH, SCORE_BYTES // (4 * (num_items + 1))))
    rng = np.random.default_rng(seed + 1)
    ranks: dict[EvaluationProtocol, list[Ints]] = {p: [] for p in protocols}
    for row_ids, sequences in _rows(Path(folder), chosen):
        keep = np.asarray([len(s) >= 3 for s in sequences], bool)
        inputs, targets, everything = _held_out(sequences, stage)
        ids = row_ids[keep]
        for start in range(0, len(ids), batch):
            chunk = slice(start, start + batch)
            history = inputs[chunk]
            scores = np.asarray(scorer(ids[chunk], history_matrix(history, maxlen)), np.float32)
            target = scores[np.arange(len(history)), targets[chunk]]
            if EvaluationProtocol.SAMPLED in ranks:
                owners = np.arange(len(history))
                width = num_items + 1
                keys = np.sort(
                    np.concatenate(
                        [o * width + s for o, s in zip(owners, everything[chunk], strict=True)]
                    )
                )
                negatives = sample_outside(
                    rng, owners, keys, (len(history), SAMPLED_NEGATIVES), num_items
                )
                negative_scores = np.take_along_axis(scores, negatives, axis=1)
                ranks[EvaluationProtocol.SAMPLED].append(
                    (negative_scores > target[:, None]).sum(1).astype(np.int64)
                )
            if EvaluationProtocol.FULL in ranks:
                scores[:, 0] = -np.inf
                for row, seen in enumerate(history):
                    scores[row, seen] = -np.inf
                ranks[EvaluationProtocol.FULL].append(
                    (scores > target[:, None]).sum(1).astype(np.int64)
                )
    out: dict[str, dict[str, Any]] = {}
    for protocol, parts in ranks.items():
        all_ranks = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        out[protocol.value] = {
            "protocol": protocol.value,
            "stage": stage.value,
            "users": len(all_ranks),
            "subsample": {"users": users if chosen is not None else None, "of": num_users},
            **metrics.ranking_metrics(all_ranks),
        }
    return out
