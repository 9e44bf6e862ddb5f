"""One optimisation step's work: the network for a split, the device, and the batch loss
backpropagated in length groups (the full softmax or the sampled candidates' logits)."""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from recops_contracts.training import LossName, ModelHyperparameters
from recops_trainer.config import Precision
from recops_trainer.data.sampler import Batch
from recops_trainer.model.losses import full_softmax_loss, sequence_loss
from recops_trainer.model.network import SSEPT, ModelShape

# Length groups per batch (see _accumulate_gradients).
LENGTH_GROUPS = 8


class IdRanges(Protocol):
    """What the network's shape needs of the data: its user and item id ranges."""

    @property
    def num_users(self) -> int: ...

    @property
    def num_items(self) -> int: ...


def build_model(data: IdRanges, hp: ModelHyperparameters) -> SSEPT:
    """The network for ``data``'s ids (a split, a snapshot, a streamed folder's counts)."""
    shape = ModelShape(
        num_users=data.num_users,
        num_items=data.num_items,
        maxlen=hp.maxlen,
        item_dim=hp.item_dim,
        user_dim=hp.effective_user_dim,
        num_blocks=hp.num_blocks,
        num_heads=hp.num_heads,
        dropout=hp.dropout,
    )
    return SSEPT(shape)


def training_device() -> torch.device:
    """CUDA when this process sees a GPU (Ray gives each GPU worker its own), else the CPU.

    ``RECOPS_DEVICE=cpu`` keeps training on the CPU on a machine that has a GPU.
    """
    wanted = os.environ.get("RECOPS_DEVICE", "auto")
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def _on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict in host memory: checkpoints load anywhere, and later steps
    cannot change it."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _length_groups(batch: Batch, groups: int) -> list[tuple[np.ndarray, int]]:
    """Rows ordered by history length in ``groups`` slices, each with its longest length."""
    lengths = (batch.seq != 0).sum(1)
    order = np.argsort(lengths, kind="stable")
    out = []
    for rows in np.array_split(order, min(groups, len(order))):
        if len(rows):
            out.append((rows, max(1, int(lengths[rows].max()))))
    return out


def _accumulate_gradients(
    model: SSEPT,
    batch: Batch,
    hp: ModelHyperparameters,
    items: int,
    device: torch.device,
    phases: dict[str, float] | None = None,
    precision: Precision = Precision.FP32,
) -> float:
    """Backpropagate the batch loss; returns its value and adds the seconds of the forward
    and backward passes to ``phases``.

    Histories are left-padded, and most users have far fewer than ``maxlen`` items, so the
    batch is cut into length groups with their padding trimmed: the same loss and gradient
    (padding is masked everywhere) for much less attention compute.
    """
    pos_all = batch.pos != 0
    count = max(1, int(pos_all.sum()))
    total = 0.0
    forward = backward = 0.0
    for rows, length in _length_groups(batch, LENGTH_GROUPS):
        weight = int(pos_all[rows].sum()) / count
        if weight == 0:
            continue
        started = time.perf_counter()
        users = torch.from_numpy(batch.users[rows]).to(device)
        seq = torch.from_numpy(batch.seq[rows, -length:]).to(device)
        pos = torch.from_numpy(batch.pos[rows, -length:]).to(device)
        with _autocast(precision, device):
            if hp.loss == LossName.SOFTMAX:
                loss = _full_softmax(model, users, seq, pos) * weight
            else:
                neg = torch.from_numpy(batch.neg[rows, -length:]).to(device)
                candidates = torch.cat([pos.unsqueeze(-1), neg], dim=-1)
                logits = model.score_positions(
                    users,
                    seq,
                    candidates,
                    through_catalogue=scores_through_catalogue(candidates.shape[-1], items),
                ).float()
                mask = (pos != 0).to(logits.dtype)
                loss = sequence_loss(hp.loss, logits[..., 0], logits[..., 1:], mask, items)
                loss = loss * weight
        middle = time.perf_counter()
        torch.autograd.backward(loss)
        total += float(loss.detach())
        forward += middle - started
        backward += time.perf_counter() - middle
    if phases is not None:
        phases["forward"] = phases.get("forward", 0.0) + forward
        phases["backward"] = phases.get("backward", 0.0) + backward
    return total


# Scoring every item at a target position and picking K + 1 columns beats gathering K + 1
# output vectors once the catalogue is under about 80 times the candidates (measured on one
# CPU thread, 20,000 positions of width 128, forward and backward: 3,416 items break even
# near K = 40, 20,000 items near K = 250); 64 keeps the gather where it is unsure.
CATALOGUE_SCORING_RATIO = 64


def scores_through_catalogue(candidates: int, num_items: int) -> bool:
    """Whether ``candidates`` per position are cheaper picked from the whole catalogue's scores."""
    return num_items <= CATALOGUE_SCORING_RATIO * candidates


def _full_softmax(model: SSEPT, users: Tensor, seq: Tensor, pos: Tensor) -> Tensor:
    """Cross-entropy over the whole catalogue at the target positions only.

    Only those positions' hidden states are scored (``[N, item_dim] @ [item_dim, items]``),
    against the item table without its padding row. SSE-PT's user part of the output
    vector adds the same offset to every item of a position, so it cancels in the softmax
    (and its gradient is zero): the item part alone gives the exact loss.
    """
    hidden, _ = model.encode(users, seq)
    where = pos != 0
    states = hidden[where][:, : model.shape.item_dim]
    return full_softmax_loss(states, model.item_embedding.weight[1:], pos[where])


def _autocast(precision: Precision, device: torch.device) -> Any:
    """bfloat16 autocast of a forward pass when asked for; the backward pass follows the
    forward's dtypes (autocast's own advice: never wrap backward)."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == Precision.BF16
    )
