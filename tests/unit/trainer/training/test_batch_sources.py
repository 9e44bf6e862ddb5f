"""The one training loop over another batch source: every user once an epoch, as a Ray Data
shard streams them (here without Ray), with the in-memory path's history, time limit and
learning-rate decays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from recops_contracts.training import ModelHyperparameters
from recops_trainer.config import TrainingSettings
from recops_trainer.data.sampler import Batch, TrainSampler
from recops_trainer.data.split import Split
from recops_trainer.evaluation.users import SplitUsers
from recops_trainer.training.loop import fit
from recops_trainer.training.state import Distributed

HP = {"maxlen": 10, "itemDim": 16, "userDim": 8, "epochs": 4, "batchSize": 32, "seed": 3}
ROW_KEYS = {"epoch", "loss", "seconds", "phases", "elapsed", "sequences"}


class OnePass:
    """Each eligible user once an epoch in batches of ``size``, the last partial one dropped."""

    def __init__(self, split: Split, hp: ModelHyperparameters) -> None:
        self.sampler = TrainSampler(split, hp.maxlen, seed=hp.seed)
        self.size = hp.batch_size

    def epoch(self) -> Iterator[Batch]:
        users = self.sampler.users
        for start in range(0, len(users) - self.size + 1, self.size):
            yield self.sampler.rows(users[start : start + self.size])

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None


class OnePassData:
    def __init__(self, split: Split) -> None:
        self.split = split
        self.num_users = split.num_users
        self.num_items = split.num_items

    def batches(self, hp: ModelHyperparameters, dist: Distributed) -> OnePass:
        return OnePass(self.split, hp)

    def validation_users(self) -> SplitUsers:
        return SplitUsers(self.split)


def _one_pass(split: Split, hp: ModelHyperparameters) -> int:
    eligible = int(np.sum([len(s) > 1 for s in split.train]))
    return eligible // hp.batch_size * hp.batch_size


def test_a_one_pass_source_trains_through_the_loop_with_the_same_history(
    synthetic_split: Split,
) -> None:
    hp = ModelHyperparameters.model_validate(HP)
    settings = TrainingSettings(evalEvery=2, patience=5, threads=1)
    _, streamed = fit(OnePassData(synthetic_split), hp, settings)
    _, sampled = fit(synthetic_split, hp, settings)
    assert streamed.epoch == sampled.epoch == 4
    for a, b in zip(streamed.history, sampled.history, strict=True):
        assert set(a) == set(b) and set(a) >= ROW_KEYS
    # One pass over the users an epoch; the sampler takes as many rows, drawn with replacement.
    assert [row["sequences"] for row in streamed.history] == [_one_pass(synthetic_split, hp)] * 4
    assert [row["sequences"] for row in sampled.history] == [_one_pass(synthetic_split, hp)] * 4
    assert streamed.history[-1]["loss"] < streamed.history[0]["loss"]


def test_a_one_pass_source_has_the_time_limit_and_the_decays(synthetic_split: Split) -> None:
    hp = ModelHyperparameters.model_validate(HP | {"epochs": 30, "learningRate": 0.5})
    out_of_time = TrainingSettings(evalEvery=5, threads=1, timeLimitMinutes=1e-6)
    _, state = fit(OnePassData(synthetic_split), hp, out_of_time)
    # Stopped after the first epoch, which is validated although evalEvery is 5.
    assert state.epoch == 1 and "val" in state.history[-1]
    decays = TrainingSettings(evalEvery=1, patience=1, threads=1, lrDecays=1, lrDecayFactor=0.1)
    _, state = fit(OnePassData(synthetic_split), hp, decays)
    assert state.decays == 1 and state.stopped_early and state.epoch < 30
