"""What the training loop trains on: the id ranges, each epoch's batches, the validation users.

``fit`` is one loop for every path; a ``TrainingData`` is the strategy that differs:

- in memory (``InMemoryData``, here): the split's sampler draws each worker's users with
  replacement, the same number of steps on every worker, and validation reads the split;
- streamed (``distributed.streaming.StreamedData``): each worker reads its Ray Data shard
  of training windows once per epoch, and validation reads the prepared folder row group
  by row group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from recops_contracts.training import ModelHyperparameters
from recops_trainer.data.sampler import Batch, TrainSampler
from recops_trainer.data.split import Split
from recops_trainer.evaluation.users import EvalUsers, SplitUsers
from recops_trainer.training.state import Distributed


class BatchSource(Protocol):
    """Where an epoch's batches come from, and what of it a checkpoint keeps."""

    def epoch(self) -> Iterator[Batch]:
        """This worker's batches of one epoch, in training order."""
        ...

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to draw the same batches on (``TrainState.sampler_state``)."""
        ...

    def restore(self, state: dict[str, Any]) -> None: ...


class TrainingData(Protocol):
    """One path's data for ``fit`` (see the module docstring)."""

    @property
    def num_users(self) -> int: ...

    @property
    def num_items(self) -> int: ...

    def batches(self, hp: ModelHyperparameters, dist: Distributed) -> BatchSource:
        """This worker's batch source (``dist`` says which share is its own)."""
        ...

    def validation_users(self) -> EvalUsers:
        """The users rank 0 validates on (``Stage.VALID``)."""
        ...


class SampledBatches:
    """``steps`` batches of ``size`` users an epoch, drawn by the in-memory sampler."""

    def __init__(self, sampler: TrainSampler, steps: int, size: int) -> None:
        self.sampler = sampler
        self.steps = steps
        self.size = size

    def epoch(self) -> Iterator[Batch]:
        for _ in range(self.steps):
            yield self.sampler.batch(self.size)

    def state(self) -> dict[str, Any]:
        return self.sampler.state()

    def restore(self, state: dict[str, Any]) -> None:
        self.sampler.restore(state)


class InMemoryData:
    """A split held in memory: sampled batches, validation on the split's own users."""

    def __init__(self, split: Split) -> None:
        self.split = split

    @property
    def num_users(self) -> int:
        return self.split.num_users

    @property
    def num_items(self) -> int:
        return self.split.num_items

    def batches(self, hp: ModelHyperparameters, dist: Distributed) -> SampledBatches:
        split = self.split
        sse_user, sse_item = hp.effective_sse
        users = None
        if dist.world > 1:
            users = np.arange(1, split.num_users + 1)[dist.rank :: dist.world]
        sampler = TrainSampler(
            split,
            hp.maxlen,
            sse_user=sse_user,
            sse_item=sse_item,
            negatives=hp.negatives if hp.loss.samples_negatives else 0,
            users=users,
            seed=hp.seed * 1000 + dist.rank,
        )
        # Every worker takes the same number of steps (gradients are averaged each step),
        # and the global batch stays hp.batch_size whatever the worker count.
        eligible = sum(1 for s in split.train if len(s) > 1)
        steps = max(1, eligible // hp.batch_size)
        return SampledBatches(sampler, steps, max(1, hp.batch_size // dist.world))

    def validation_users(self) -> SplitUsers:
        return SplitUsers(self.split)
