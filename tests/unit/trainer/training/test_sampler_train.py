"""Training batches (SSE, negatives) and the training loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recops_contracts.training import ModelHyperparameters
from recops_trainer.config import TrainingSettings
from recops_trainer.data import sampler as sampler_module
from recops_trainer.data.sampler import TrainSampler, dense_mask, sample_outside
from recops_trainer.data.split import Split
from recops_trainer.model.network import SSEPT
from recops_trainer.training.hooks import CheckpointHook
from recops_trainer.training.loop import fit
from recops_trainer.training.state import EpochResult, Hook, TrainState


def test_batches_without_sse_are_the_users_own_sequences(synthetic_split: Split) -> None:
    sampler = TrainSampler(synthetic_split, maxlen=8, seed=1)
    batch = sampler.batch(64)
    for user, seq, pos in zip(batch.users, batch.seq, batch.pos, strict=True):
        train = synthetic_split.train[user - 1]
        window = train[-9:]
        assert seq[seq > 0].tolist() == window[:-1].tolist()
        assert pos[pos > 0].tolist() == window[1:].tolist()


def test_negatives_are_outside_the_users_training_items(synthetic_split: Split) -> None:
    sampler = TrainSampler(synthetic_split, maxlen=8, negatives=5, seed=2)
    batch = sampler.batch(64)
    assert batch.neg.shape == (64, 8, 5)
    for user, pos, neg in zip(batch.users, batch.pos, batch.neg, strict=True):
        own = set(synthetic_split.train[user - 1].tolist())
        assert not own & set(neg[pos > 0].ravel().tolist())
        assert np.all(neg[pos == 0] == 0)


def test_the_dense_mask_finds_the_same_negatives_as_the_search(
    synthetic_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense = TrainSampler(synthetic_split, maxlen=8, negatives=20, sse_item=0.2, seed=4)
    monkeypatch.setattr(sampler_module, "DENSE_MASK_BYTES", 0)
    searched = TrainSampler(synthetic_split, maxlen=8, negatives=20, sse_item=0.2, seed=4)
    assert dense.mask is not None and searched.mask is None
    for _ in range(3):
        a, b = dense.batch(64), searched.batch(64)
        for field in ("users", "seq", "pos", "neg"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("with_mask", [False, True])
def test_sample_outside_redraws_until_no_excluded_pair_is_left(with_mask: bool) -> None:
    # Owner 1 had items 1-9 and owner 2 items 2-10 of 10: each has exactly one item left,
    # so nearly every draw is redrawn, several times over.
    keys = np.sort(np.r_[1 * 11 + np.arange(1, 10), 2 * 11 + np.arange(2, 11)])
    mask = dense_mask(keys, 2, 10) if with_mask else None
    out = sample_outside(np.random.default_rng(0), np.array([1, 2]), keys, (2, 50), 10, mask=mask)
    assert np.all(out[0] == 10) and np.all(out[1] == 1)
    with pytest.raises(ValueError, match="no negatives to sample"):
        full = np.sort(np.r_[keys, 1 * 11 + 10])  # owner 1 has every item
        sample_outside(np.random.default_rng(0), np.array([1]), full, (1, 5), 10)


@pytest.mark.parametrize(("p_user", "p_item"), [(0.92, 0.1), (0.3, 0.5)])
def test_sse_replaces_ids_at_the_configured_rate(
    synthetic_split: Split, p_user: float, p_item: float
) -> None:
    clean = TrainSampler(synthetic_split, maxlen=10, seed=5).batch(4000)
    noisy = TrainSampler(synthetic_split, maxlen=10, sse_user=p_user, sse_item=p_item, seed=5)
    batch = noisy.batch(4000)
    # Same seed, same users drawn: compare against the clean rows of those users.
    valid = clean.seq > 0
    assert np.array_equal(batch.seq > 0, valid)
    item_rate = (batch.seq != clean.seq)[valid].mean()
    user_rate = (batch.users != clean.users).mean()
    # A replacement may draw the same id again (1 in num_items / num_users).
    expect_item = p_item * (1 - 1 / synthetic_split.num_items)
    expect_user = p_user * (1 - 1 / synthetic_split.num_users)
    assert item_rate == pytest.approx(expect_item, abs=0.02)
    assert user_rate == pytest.approx(expect_user, abs=0.03)


def small_hp(**overrides: object) -> ModelHyperparameters:
    base = {"maxlen": 10, "itemDim": 16, "userDim": 8, "epochs": 6, "batchSize": 32, "seed": 3}
    return ModelHyperparameters.model_validate(base | overrides)


SETTINGS = TrainingSettings(evalEvery=3, patience=5, threads=1)


def recorder(losses: list[float]) -> Hook:
    def record(result: EpochResult, state: TrainState, model: SSEPT) -> None:
        losses.append(result.loss)

    return record


def test_training_lowers_the_loss_and_is_deterministic(synthetic_split: Split) -> None:
    losses: list[list[float]] = []
    for _ in range(2):
        seen: list[float] = []
        _, state = fit(synthetic_split, small_hp(), SETTINGS, hooks=[recorder(seen)])
        losses.append(seen)
    assert losses[0][-1] < losses[0][0]
    assert losses[0] == losses[1]
    assert state.best_epoch in (3, 6)
    assert [h["epoch"] for h in state.history if "val" in h] == [3, 6]


def test_resume_continues_from_a_checkpoint(synthetic_split: Split, tmp_path: Path) -> None:
    hp = small_hp(epochs=4)
    _, straight = fit(synthetic_split, hp, SETTINGS)
    fit(synthetic_split, small_hp(epochs=2), SETTINGS, hooks=[CheckpointHook(tmp_path, 2)])
    state = TrainState.load(tmp_path / "checkpoint" / "state.pt")
    assert state.epoch == 2
    _, resumed = fit(synthetic_split, hp, SETTINGS, resume=state)
    assert resumed.epoch == 4
    assert [h["loss"] for h in resumed.history] == pytest.approx(
        [h["loss"] for h in straight.history]
    )


def test_early_stopping_keeps_the_best_model(synthetic_split: Split) -> None:
    settings = TrainingSettings(evalEvery=1, patience=1, threads=1)
    _, state = fit(synthetic_split, small_hp(epochs=30, learningRate=0.5), settings)
    assert state.stopped_early
    assert state.epoch < 30
    assert state.best_model_state


def test_a_plateau_decays_the_learning_rate_from_the_best_model(synthetic_split: Split) -> None:
    # Too large a step: validation stops improving quickly, so plateaus come early.
    settings = TrainingSettings(evalEvery=1, patience=1, threads=1, lrDecays=2, lrDecayFactor=0.1)
    best_at_decay: list[float] = []

    def at_each_epoch(result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if state.decays > len(best_at_decay):
            # The decay went back to the best model: the weights are the kept ones again.
            kept = state.best_model_state["item_embedding.weight"]
            assert torch.equal(model.state_dict()["item_embedding.weight"].cpu(), kept)
            best_at_decay.append(state.best_score)

    _, state = fit(
        synthetic_split, small_hp(epochs=40, learningRate=0.5), settings, hooks=[at_each_epoch]
    )
    assert state.decays == 2 and len(best_at_decay) == 2
    # Stopped at the plateau after the last decay, not at the epoch budget.
    assert state.stopped_early and state.epoch < 40
    without = TrainingSettings(evalEvery=1, patience=1, threads=1)
    _, plain = fit(synthetic_split, small_hp(epochs=40, learningRate=0.5), without)
    assert plain.decays == 0 and plain.epoch < state.epoch


@pytest.mark.parametrize("loss", ["gbce", "sampled-softmax"])
def test_many_negative_losses_train(synthetic_split: Split, loss: str) -> None:
    seen: list[float] = []
    hp = small_hp(loss=loss, negatives=8, epochs=3)
    fit(synthetic_split, hp, SETTINGS, hooks=[recorder(seen)])
    assert seen[-1] < seen[0]


def test_sasrec_ignores_sse_and_user_dim() -> None:
    hp = ModelHyperparameters.model_validate({"architecture": "sasrec", "userDim": 50})
    assert hp.effective_user_dim == 0
    assert hp.effective_sse == (0.0, 0.0)


def test_training_hands_back_a_cpu_model_and_host_copies_of_its_state(
    synthetic_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from recops_trainer.training.steps import training_device

    monkeypatch.setenv("RECOPS_DEVICE", "cpu")
    assert training_device() == torch.device("cpu")
    model, state = fit(synthetic_split, small_hp(epochs=1), SETTINGS)
    params = dict(model.named_parameters())
    assert all(p.device.type == "cpu" for p in params.values())
    for states in (state.model_state, state.best_model_state):
        assert states and all(t.device.type == "cpu" for t in states.values())
    # Copies, not views of the live parameters: training on cannot change a checkpoint.
    name, value = next(iter(state.model_state.items()))
    assert value.data_ptr() != params[name].data_ptr()


def test_the_monitored_protocol_selects_the_kept_epoch(synthetic_split: Split) -> None:
    hp = small_hp(epochs=6)
    for monitor in ("sampled", "full"):
        settings = TrainingSettings(evalEvery=1, patience=10, threads=1, monitor=monitor)
        _, state = fit(synthetic_split, hp, settings)
        scores = {h["epoch"]: h["val"][monitor]["ndcg@10"] for h in state.history}
        assert state.monitor == monitor
        assert state.best_score == max(scores.values())
        assert scores[state.best_epoch] == state.best_score


def test_resuming_under_another_monitor_rescores_the_kept_model(
    synthetic_split: Split, tmp_path: Path
) -> None:
    sampled = TrainingSettings(evalEvery=1, patience=10, threads=1)
    fit(synthetic_split, small_hp(epochs=3), sampled, hooks=[CheckpointHook(tmp_path, 3)])
    state = TrainState.load(tmp_path / "checkpoint" / "state.pt")
    kept_epoch = state.best_epoch
    kept_full = next(h for h in state.history if h["epoch"] == kept_epoch)["val"]["full"]
    full = TrainingSettings(evalEvery=1, patience=10, threads=1, monitor="full")
    _, resumed = fit(synthetic_split, small_hp(epochs=4), full, resume=state)
    # The kept model's own full-ranking score, not its sampled one, is what epoch 4 had to
    # beat (sampled scores are several times larger on the same model).
    new = resumed.history[-1]["val"]["full"]["ndcg@10"]
    assert resumed.best_score == max(new, kept_full["ndcg@10"])
    assert resumed.best_epoch == (4 if new > kept_full["ndcg@10"] else kept_epoch)
    assert resumed.monitor == "full"


def test_bf16_autocast_trains(synthetic_split: Split) -> None:
    seen: list[float] = []
    settings = TrainingSettings(evalEvery=3, patience=5, threads=1, precision="bf16")
    for loss in ("softmax", "bce"):
        seen.clear()
        fit(synthetic_split, small_hp(loss=loss, epochs=3), settings, hooks=[recorder(seen)])
        assert all(np.isfinite(seen)) and seen[-1] < seen[0]
