"""SSE-PT (Wu et al., RecSys 2020) in PyTorch, layer for layer as its reference code.

Each position's input is the item embedding (scaled by sqrt(item_dim)) concatenated with
the user embedding, plus a learned positional embedding of the full width. Blocks are
pre-norm causal self-attention (queries are layer-normed, keys are not; the residual adds
the normed queries) and a point-wise feed-forward network. Items
are scored by the dot product of the last hidden state with [item embedding; user
embedding], so the user part adds the same offset to every item of one user, as in the
reference. SASRec is the same network with ``user_dim = 0``.

One deliberate difference: the reference also scales the user embedding by sqrt(user_dim).
That scaled vector enters every logit, so at initialisation each user gets a random logit
offset several times larger than the item term, and training sits on a popularity plateau
for many epochs (ML-100K, paper configuration without SSE, 20 epochs: sampled NDCG@10 0.20
scaled against 0.33 unscaled). Unscaled, the network learns as fast as SASRec.

Stochastic Shared Embeddings replace ids in the training batches (see ``sampler.py``),
so the network itself is deterministic in ``eval()`` and free of data-dependent control
flow, which keeps it exportable to ONNX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

# The reference masks attention logits with -2**32 + 1 rather than -inf: a fully padded
# row then softmaxes to a uniform row (zeroed by the query mask) instead of NaN.
_MASK_VALUE = -(2.0**32) + 1.0
# Column 0 is padding; it must never be recommended.
PADDING_SCORE = -1.0e9
# The reference's layer-norm epsilon.
_LN_EPS = 1e-8


@dataclass(frozen=True)
class ModelShape:
    """Everything needed to rebuild the network (stored in the model folder's config.json)."""

    num_users: int
    num_items: int
    maxlen: int = 200
    item_dim: int = 50
    user_dim: int = 50
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2

    def __post_init__(self) -> None:
        hidden = self.item_dim + self.user_dim
        if hidden % self.num_heads:
            raise ValueError(
                f"numHeads ({self.num_heads}) must divide itemDim + userDim ({hidden})"
            )
        if self.num_items < 1:
            raise ValueError("num_items must be at least 1")

    @property
    def hidden(self) -> int:
        return self.item_dim + self.user_dim

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class _Attention(nn.Module):
    """Multi-head attention as the reference writes it: biased Q/K/V, no output projection."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: Tensor, keys: Tensor, allowed: Tensor, query_mask: Tensor) -> Tensor:
        batch, length, hidden = queries.shape

        def split(x: Tensor) -> Tensor:
            return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(queries)), split(self.k(keys)), split(self.v(keys))
        logits = (q @ k.transpose(-1, -2)) * self.scale
        logits = logits.masked_fill(~allowed, _MASK_VALUE)
        weights = torch.softmax(logits, dim=-1) * query_mask
        out: Tensor = self.dropout(weights) @ v
        return out.transpose(1, 2).reshape(batch, length, hidden) + queries


class _FeedForward(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dropout(torch.relu(self.inner(x)))
        out: Tensor = self.dropout(self.outer(y))
        return out + x


class _Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden, eps=_LN_EPS)
        self.attention = _Attention(hidden, heads, dropout)
        self.feed_forward_norm = nn.LayerNorm(hidden, eps=_LN_EPS)
        self.feed_forward = _FeedForward(hidden, dropout)

    def forward(self, x: Tensor, allowed: Tensor, query_mask: Tensor, mask: Tensor) -> Tensor:
        x = self.attention(self.attention_norm(x), x, allowed, query_mask)
        out: Tensor = self.feed_forward(self.feed_forward_norm(x))
        return out * mask


class SSEPT(nn.Module):
    causal: Tensor
    positions: Tensor

    """SSE-PT (or SASRec when ``user_dim == 0``).

    ``forward(user_ids [B], history [B, maxlen]) -> scores [B, num_items + 1]`` scores every
    item after the last history position; column 0 (padding) gets ``PADDING_SCORE``.
    """

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        self.item_embedding = nn.Embedding(shape.num_items + 1, shape.item_dim, padding_idx=0)
        # One row more than users so that unknown users (id 0) still have a vector.
        self.user_embedding = nn.Embedding(shape.num_users + 1, max(shape.user_dim, 1))
        self.position_embedding = nn.Embedding(shape.maxlen, shape.hidden)
        self.input_dropout = nn.Dropout(shape.dropout)
        self.blocks = nn.ModuleList(
            _Block(shape.hidden, shape.num_heads, shape.dropout) for _ in range(shape.num_blocks)
        )
        self.final_norm = nn.LayerNorm(shape.hidden, eps=_LN_EPS)
        causal = torch.tril(torch.ones(shape.maxlen, shape.maxlen, dtype=torch.bool))
        self.register_buffer("causal", causal, persistent=False)
        self.register_buffer("positions", torch.arange(shape.maxlen), persistent=False)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # TF1's default (Glorot uniform) for every matrix, zero biases, as in the reference.
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                nn.init.xavier_uniform_(param)
            elif name.endswith("bias"):
                nn.init.zeros_(param)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def _user_vectors(self, user_ids: Tensor) -> Tensor:
        """User embeddings ``[B, user_dim]`` (empty for SASRec)."""
        users: Tensor = self.user_embedding(user_ids)
        return users[:, : self.shape.user_dim]

    def encode(self, user_ids: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden states ``[B, L, hidden]`` for every position, and the user vectors."""
        length = history.shape[1]
        mask = (history != 0).unsqueeze(-1).to(self.item_embedding.weight.dtype)
        items = self.item_embedding(history) * math.sqrt(self.shape.item_dim)
        users = self._user_vectors(user_ids)
        x = torch.cat([items, users.unsqueeze(1).expand(-1, length, -1)], dim=-1)
        # Histories are left-padded, so a shorter (trimmed) input holds the last positions.
        x = x + self.position_embedding(self.positions[self.shape.maxlen - length :])
        x = self.input_dropout(x) * mask
        keys_valid = (history != 0).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, L]
        causal = self.causal[:length, :length].unsqueeze(0).unsqueeze(0)
        allowed = causal & keys_valid
        query_mask = mask.unsqueeze(1)  # [B, 1, L, 1]
        for block in self.blocks:
            x = block(x, allowed, query_mask, mask)
        return self.final_norm(x), users

    def output_vectors(self, items: Tensor, users: Tensor) -> Tensor:
        """[item embedding; user embedding] for ``items [B, ...]`` and ``users [B, user_dim]``."""
        item_vectors = self.item_embedding(items)
        shape = (*items.shape, self.shape.user_dim)
        view = (users.shape[0],) + (1,) * (items.dim() - 1) + (self.shape.user_dim,)
        return torch.cat([item_vectors, users.view(view).expand(shape)], dim=-1)

    def score_positions(
        self, user_ids: Tensor, history: Tensor, items: Tensor, *, through_catalogue: bool = False
    ) -> Tensor:
        """Training logits: ``items [B, L, K]`` scored at every position -> ``[B, L, K]``.

        Two ways to the same logits at the positions that have a target (``items[..., 0]``,
        the positive, not padding; the others are masked out of every loss): gathering each
        candidate's output vector, ``[B, L, K, hidden]``, cheap for a few candidates; or,
        with ``through_catalogue``, scoring the whole catalogue at those positions in one
        matrix product and picking the candidates' columns, which costs the same whatever
        ``K`` is (positions without a target then score 0).
        """
        hidden, users = self.encode(user_ids, history)
        if through_catalogue:
            return self._picked_from_catalogue(hidden, users, items)
        vectors = self.output_vectors(items, users)
        return (vectors * hidden.unsqueeze(2)).sum(-1)

    def _picked_from_catalogue(self, hidden: Tensor, users: Tensor, items: Tensor) -> Tensor:
        where = items[..., 0] != 0
        states = hidden[where]
        dim = self.shape.item_dim
        picked = (states[:, :dim] @ self.item_embedding.weight.t()).gather(1, items[where])
        if self.shape.user_dim:
            # The user half adds the same offset to every candidate of a position.
            rows = users.unsqueeze(1).expand(-1, items.shape[1], -1)[where]
            picked = picked + (states[:, dim:] * rows).sum(-1, keepdim=True)
        return picked.new_zeros(items.shape).index_put((where,), picked)

    def forward(self, user_ids: Tensor, history: Tensor) -> Tensor:
        hidden, users = self.encode(user_ids, history)
        last = hidden[:, -1, :]
        item_part = last[:, : self.shape.item_dim] @ self.item_embedding.weight.t()
        user_part = (last[:, self.shape.item_dim :] * users).sum(-1, keepdim=True)
        scores = item_part[:, 1:] + user_part
        padding = torch.full_like(scores[:, :1], PADDING_SCORE)
        return torch.cat([padding, scores], dim=1)
