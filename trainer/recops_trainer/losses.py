"""Training losses over positive and sampled negative logits, masked to real positions.

- ``bce``: the reference's binary cross-entropy (one negative per position).
- ``gbce``: gSASRec's generalised BCE (Petrov & Macdonald, RecSys 2023): the positive
  term is weighted by beta, which undoes the overconfidence that few negatives cause.
- ``sampled-softmax``: cross-entropy of the positive against its negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from recops_trainer.config import LossName

GBCE_CALIBRATION = 0.75


def gbce_beta(negatives: int, num_items: int, t: float = GBCE_CALIBRATION) -> float:
    alpha = negatives / max(num_items - 1, 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def sequence_loss(
    name: LossName, pos_logits: Tensor, neg_logits: Tensor, mask: Tensor, num_items: int
) -> Tensor:
    """``pos_logits [B, L]``, ``neg_logits [B, L, K]``, ``mask [B, L]`` (1 where a target)."""
    count = mask.sum().clamp_min(1.0)
    if name == LossName.SAMPLED_SOFTMAX:
        logits = torch.cat([pos_logits.unsqueeze(-1), neg_logits], dim=-1)
        per_position = -torch.log_softmax(logits, dim=-1)[..., 0]
        return (per_position * mask).sum() / count
    weight = 1.0
    if name == LossName.GBCE:
        weight = gbce_beta(neg_logits.shape[-1], num_items)
    positive = -weight * F.logsigmoid(pos_logits)
    negative = -F.logsigmoid(-neg_logits).sum(-1)
    return ((positive + negative) * mask).sum() / count
