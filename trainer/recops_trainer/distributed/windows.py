"""The Ray Data side of streaming training: a prepared folder's user rows turned into
training windows by Ray Data tasks, block by block, so no process holds every sequence.

Each block of user rows (``user``, ``items``) becomes the rows' training windows
(``window_batch``: the user's last ``maxlen + 1`` training items, SSE replacements,
sampled negatives), exactly as the in-memory sampler draws one row. Windows draw fresh
randomness on every pass, so unlike the in-memory path a streaming run is not
bit-for-bit reproducible.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_trainer.config import TrainConfig
from recops_trainer.data.prepared.reader import part_files
from recops_trainer.data.sampler import TrainSampler
from recops_trainer.data.split import Split

Ints = npt.NDArray[np.int64]

# Rows (users) per Ray Data windowing task.
WINDOW_BATCH_ROWS = 1024
# Ray Data's reading and windowing tasks run beside the training workers: each worker
# leaves this many of its CPUs to them (as a Ray resource), and each task asks for
# DATA_TASK_CPUS, so the data keeps flowing while every worker trains.
DATA_CPUS_PER_WORKER = 0.5
DATA_TASK_CPUS = 0.25


def window_batch(
    batch: dict[str, Any],
    *,
    maxlen: int,
    num_users: int,
    num_items: int,
    sse_user: float,
    sse_item: float,
    negatives: int,
    seed: int,
) -> dict[str, Ints]:
    """Training windows of a block of user rows (``user``, ``items``): the Ray Data step.

    Leave-one-out as in the in-memory split: a user with 3 or more items trains on all but
    the last two; users left with fewer than 2 training items have nothing to learn from
    and are dropped. The rows' own items are the exclusions for their negatives.
    """
    users = np.asarray(batch["user"], np.int64)
    sequences = [np.asarray(s, np.int64) for s in batch["items"]]
    train = [s[:-2] if len(s) >= 3 else s for s in sequences]
    rows = np.flatnonzero([len(t) > 1 for t in train])
    shape = (0, maxlen)
    if len(rows) == 0:
        empty = np.zeros(shape, np.int64)
        return {
            "user": np.zeros(0, np.int64),
            "seq": empty,
            "pos": empty,
            "neg": np.zeros((*shape, negatives or 1), np.int64),
        }
    rng_seed = [seed, int(users[0]), time.time_ns() & 0xFFFFFFFF]
    local = Split(
        [train[r] for r in rows],
        np.zeros(len(rows), np.int64),
        np.zeros(len(rows), np.int64),
        len(rows),
        num_items,
    )
    # User SSE needs the whole id range: it is applied here, not by the block's sampler.
    sampler = TrainSampler(
        local,
        maxlen,
        sse_item=sse_item,
        negatives=negatives,
        seed=int(np.random.SeedSequence(rng_seed).generate_state(1)[0]),
    )
    drawn = sampler.rows(np.arange(1, len(rows) + 1, dtype=np.int64))
    inputs = users[rows]
    if sse_user > 0:
        swap = sampler.rng.random(len(rows)) < sse_user
        inputs = np.where(swap, sampler.rng.integers(1, num_users + 1, size=len(rows)), inputs)
    neg = drawn.neg if negatives else np.zeros((len(rows), maxlen, 1), np.int64)
    return {"user": inputs.astype(np.int64), "seq": drawn.seq, "pos": drawn.pos, "neg": neg}


def training_dataset(folder: Path, config: TrainConfig, num_users: int, num_items: int) -> Any:
    """The lazy Ray Data pipeline: Parquet parts -> per-user training windows."""
    import ray.data

    hp = config.model
    sse_user, sse_item = hp.effective_sse
    windows = functools.partial(
        window_batch,
        maxlen=hp.maxlen,
        num_users=num_users,
        num_items=num_items,
        sse_user=sse_user,
        sse_item=sse_item,
        negatives=hp.negatives if hp.loss.samples_negatives else 0,
        seed=hp.seed,
    )
    paths = [str(p) for p in part_files(folder)]
    # The projection is pushed down into the Parquet reader: timestamps are never read.
    rows = ray.data.read_parquet(paths, num_cpus=DATA_TASK_CPUS).select_columns(["user", "items"])
    return rows.map_batches(
        windows, batch_format="numpy", batch_size=WINDOW_BATCH_ROWS, num_cpus=DATA_TASK_CPUS
    )
