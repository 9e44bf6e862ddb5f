"""The serving graph: the model's function with the work that serving never reads removed.

``SSEPT.forward`` runs every block at every position and then keeps the last position.
Two rewrites give the same scores with less work, and every compiled target exports
this graph (the cpu-torch reference keeps the model's own ``forward``; each build's
parity check compares the two on real users):

* the last block runs its query, attention row and feed-forward network at the last
  position only (keys and values still cover the whole history);
* positions are right-aligned (``maxlen - length .. maxlen - 1``), so a history shorter
  than ``maxlen`` scores exactly as the same history left-padded to ``maxlen``. Padded
  positions never reach a real position (their keys are masked, their outputs zeroed),
  so an engine may drop leading all-padding columns of a batch, and the edge build may
  take a shorter history with the same graph.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from recops_trainer.model.network import _MASK_VALUE, PADDING_SCORE, SSEPT, _Block


def _last_position(
    block: _Block, x: Tensor, allowed: Tensor, query_mask: Tensor, mask: Tensor
) -> Tensor:
    """``block(x)[:, -1:]`` computed from one query row instead of all of them."""
    attention = block.attention
    batch, length, hidden = x.shape
    head_dim = hidden // attention.heads
    queries = block.attention_norm(x[:, -1:, :])
    q = attention.q(queries).view(batch, 1, attention.heads, head_dim).transpose(1, 2)
    k = attention.k(x).view(batch, length, attention.heads, head_dim).transpose(1, 2)
    v = attention.v(x).view(batch, length, attention.heads, head_dim).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    logits = logits.masked_fill(~allowed, _MASK_VALUE)
    weights = torch.softmax(logits, dim=-1) * query_mask
    y = (weights @ v).transpose(1, 2).reshape(batch, 1, hidden) + queries
    out: Tensor = block.feed_forward(block.feed_forward_norm(y)) * mask
    return out


class ServingGraph(nn.Module):
    """``forward(user_ids [B], history [B, L <= maxlen]) -> scores [B, num_items + 1]``."""

    def __init__(self, model: SSEPT) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, user_ids: Tensor, history: Tensor) -> Tensor:
        model, shape = self.model, self.model.shape
        length = history.shape[1]
        present = history != 0
        mask = present.unsqueeze(-1).to(model.item_embedding.weight.dtype)
        items = model.item_embedding(history) * math.sqrt(shape.item_dim)
        # SASRec (user_dim 0) has no user part: a zero-width concatenation would export
        # tensors with a 0-sized axis, which ONNX Runtime refuses to broadcast.
        users = model._user_vectors(user_ids)
        x = (
            torch.cat([items, users.unsqueeze(1).expand(-1, length, -1)], dim=-1)
            if shape.user_dim
            else items
        )
        positions = model.get_buffer("positions")
        x = (x + model.position_embedding(positions[shape.maxlen - length :])) * mask
        causal = model.get_buffer("causal")
        allowed = causal[:length, :length].unsqueeze(0).unsqueeze(0) & present.unsqueeze(
            1
        ).unsqueeze(1)
        query_mask = mask.unsqueeze(1)
        blocks = [cast(_Block, block) for block in model.blocks]
        for block in blocks[:-1]:
            x = block(x, allowed, query_mask, mask)
        last = _last_position(
            blocks[-1], x, allowed[:, :, -1:, :], query_mask[:, :, -1:, :], mask[:, -1:, :]
        )
        hidden = model.final_norm(last)[:, 0, :]
        item_part = hidden[:, : shape.item_dim] @ model.item_embedding.weight.t()
        if shape.user_dim:
            user_part = (hidden[:, shape.item_dim :] * users).sum(-1, keepdim=True)
        else:
            # Still a function of user_ids (0 for every user), so the graph keeps the
            # input every engine is called with.
            user_part = (user_ids * 0).unsqueeze(-1).to(item_part.dtype)
        scores = item_part[:, 1:] + user_part
        padding = torch.full_like(scores[:, :1], PADDING_SCORE)
        return torch.cat([padding, scores], dim=1)
