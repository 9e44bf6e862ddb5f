"""The training losses, above all the full softmax over the catalogue."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from recops_contracts.training import LossName, ModelHyperparameters
from recops_trainer.config import TrainingSettings
from recops_trainer.data.sampler import TrainSampler
from recops_trainer.data.split import Split
from recops_trainer.model.losses import full_softmax_loss, sequence_loss
from recops_trainer.model.network import SSEPT, ModelShape
from recops_trainer.training.loop import fit
from recops_trainer.training.state import EpochResult, TrainState
from recops_trainer.training.steps import _full_softmax, scores_through_catalogue

ITEMS = 9
SETTINGS = TrainingSettings(evalEvery=3, patience=5, threads=1)


def _model(user_dim: int) -> SSEPT:
    torch.manual_seed(0)
    shape = ModelShape(
        num_users=4, num_items=ITEMS, maxlen=6, item_dim=8, user_dim=user_dim, dropout=0.0
    )
    return SSEPT(shape)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded inputs and targets, 0 (padding) where there is no target."""
    users = torch.tensor([1, 2, 3])
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [0, 0, 0, 0, 7, 1], [2, 3, 4, 5, 6, 7]])
    pos = torch.tensor([[0, 0, 0, 5, 6, 9], [0, 0, 0, 0, 0, 2], [0, 4, 5, 6, 7, 8]])
    return users, seq, pos


def _explicit(
    model: SSEPT, users: torch.Tensor, seq: torch.Tensor, pos: torch.Tensor
) -> torch.Tensor:
    """Every item's logit at every position, as the model scores them, then the real
    targets' mean cross-entropy: what the efficient loss must equal."""
    batch, length = seq.shape
    catalogue = torch.arange(1, ITEMS + 1).expand(batch, length, ITEMS)
    # [B, L, ITEMS], user part included, by the plain gather
    logits = model.score_positions(users, seq, catalogue)
    where = pos != 0
    return F.cross_entropy(logits[where], pos[where] - 1)


@pytest.mark.parametrize("user_dim", [0, 4])
def test_the_full_softmax_equals_cross_entropy_over_explicit_logits(user_dim: int) -> None:
    model = _model(user_dim)
    users, seq, pos = _batch()
    fast = _full_softmax(model, users, seq, pos)
    fast.backward()
    fast_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    slow = _explicit(model, users, seq, pos)
    slow.backward()
    assert float(fast.detach()) == pytest.approx(float(slow.detach()), rel=1e-5)
    for name, param in model.named_parameters():
        expected = param.grad if param.grad is not None else torch.zeros_like(param)
        got = fast_grads.get(name, torch.zeros_like(param))
        assert torch.allclose(got, expected, atol=1e-6), name


def test_the_full_softmax_matches_torch_on_values_and_gradients() -> None:
    torch.manual_seed(1)
    hidden = torch.randn(7, 5, requires_grad=True)
    items = torch.randn(ITEMS, 5, requires_grad=True)
    targets = torch.tensor([1, 9, 3, 3, 5, 2, 8])
    loss = full_softmax_loss(hidden, items, targets) * 0.3  # scaled as a length group is
    loss.backward()
    ref_hidden = hidden.detach().clone().requires_grad_()
    ref_items = items.detach().clone().requires_grad_()
    reference = F.cross_entropy(ref_hidden @ ref_items.t(), targets - 1) * 0.3
    reference.backward()
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    assert hidden.grad is not None and items.grad is not None
    assert torch.allclose(hidden.grad, ref_hidden.grad, atol=1e-7)  # type: ignore[arg-type]
    assert torch.allclose(items.grad, ref_items.grad, atol=1e-7)  # type: ignore[arg-type]


def test_padding_is_neither_a_position_nor_a_class() -> None:
    model = _model(0)
    users, seq, pos = _batch()
    before = float(_full_softmax(model, users, seq, pos).detach())
    with torch.no_grad():
        # Padding inputs and the padding item's row change nothing: 0 is never scored.
        model.item_embedding.weight[0].fill_(5.0)
    assert float(_full_softmax(model, users, seq, pos).detach()) == pytest.approx(before, rel=1e-6)
    # A padded target position adds nothing, whatever its hidden state.
    shorter = pos.clone()
    shorter[2, :3] = 0
    only = float(_explicit(model, users, seq, shorter).detach())
    assert float(_full_softmax(model, users, seq, shorter).detach()) == pytest.approx(
        only, rel=1e-5
    )


@pytest.mark.parametrize("user_dim", [0, 4])
@pytest.mark.parametrize("loss", [LossName.BCE, LossName.GBCE, LossName.SAMPLED_SOFTMAX])
def test_candidates_picked_from_the_catalogue_give_the_gathered_loss(
    user_dim: int, loss: LossName
) -> None:
    model = _model(user_dim)
    users, seq, pos = _batch()
    negatives = torch.randint(
        1, ITEMS + 1, (*pos.shape, 5), generator=torch.Generator().manual_seed(4)
    )
    candidates = torch.cat([pos.unsqueeze(-1), negatives * (pos != 0).unsqueeze(-1)], dim=-1)
    mask = (pos != 0).float()
    found = {}
    for through in (False, True):
        model.zero_grad(set_to_none=True)
        logits = model.score_positions(users, seq, candidates, through_catalogue=through)
        value = sequence_loss(loss, logits[..., 0], logits[..., 1:], mask, ITEMS)
        value.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        found[through] = (float(value.detach()), logits.detach() * mask.unsqueeze(-1), grads)
    (gathered, gathered_logits, gathered_grads), (picked, picked_logits, picked_grads) = (
        found[False],
        found[True],
    )
    assert picked == pytest.approx(gathered, rel=1e-5)
    assert torch.allclose(picked_logits, gathered_logits, atol=1e-5)
    for name, param in model.named_parameters():
        zero = torch.zeros_like(param)
        expected, got = gathered_grads.get(name, zero), picked_grads.get(name, zero)
        assert torch.allclose(got, expected, atol=1e-6), name


def test_many_negatives_are_picked_from_the_catalogue_few_are_gathered() -> None:
    assert not scores_through_catalogue(2, 3416)  # bce: one negative and the positive
    assert scores_through_catalogue(129, 3416)  # 128 negatives on ML-1M
    assert not scores_through_catalogue(129, 855_000)  # the same on ML-1B's catalogue


def test_no_target_gives_a_zero_loss_with_a_gradient() -> None:
    hidden = torch.randn(0, 4, requires_grad=True)
    loss = full_softmax_loss(hidden, torch.randn(ITEMS, 4), torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_the_sampled_loss_refuses_the_full_softmax() -> None:
    logits = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="full_softmax_loss"):
        sequence_loss(LossName.SOFTMAX, logits, logits.unsqueeze(-1), logits, ITEMS)


def test_the_full_softmax_samples_no_negatives(synthetic_split: Split) -> None:
    assert not LossName.SOFTMAX.samples_negatives
    assert all(name.samples_negatives for name in LossName if name != LossName.SOFTMAX)
    batch = TrainSampler(synthetic_split, maxlen=8, negatives=0, seed=2).batch(16)
    assert batch.neg.shape == (16, 8, 0)


@pytest.mark.parametrize("architecture", ["sasrec", "sse-pt"])
def test_the_full_softmax_trains(synthetic_split: Split, architecture: str) -> None:
    seen: list[float] = []

    def record(result: EpochResult, state: TrainState, model: SSEPT) -> None:
        seen.append(result.loss)

    hp = ModelHyperparameters.model_validate(
        {"maxlen": 10, "itemDim": 16, "userDim": 8, "epochs": 3, "batchSize": 32, "seed": 3}
        | {"loss": "softmax", "architecture": architecture, "learningRate": 0.01}
    )
    _, state = fit(synthetic_split, hp, SETTINGS, hooks=[record])
    assert seen[-1] < seen[0]
    phases = state.history[-1]["phases"]
    assert set(phases) == {"sample", "forward", "backward", "optimizer"}
    assert sum(phases.values()) <= state.history[-1]["seconds"] + 1e-3
    assert state.history[-1]["elapsed"] >= state.history[0]["elapsed"] > 0


def test_the_operator_offers_the_trainers_losses() -> None:
    from recops_contracts.training import LossName as ApiLossName

    assert [m.value for m in ApiLossName] == [m.value for m in LossName]
    hp = ModelHyperparameters.model_validate({"loss": "softmax"})
    assert hp.loss == LossName.SOFTMAX


def test_the_shipped_ml1m_softmax_config_parses() -> None:
    from pathlib import Path

    from recops_trainer.config import load_config

    root = Path(__file__).resolve().parents[4]
    config = load_config(root / "examples" / "training" / "ml1m-softmax.yaml")
    assert config.model.loss == LossName.SOFTMAX
    assert config.dataset.format == "sasrec"
    assert config.training.threads == 2
