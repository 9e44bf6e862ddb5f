"""A torch model as the evaluators' scorer: batched, padding trimmed, no gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from recops_trainer.model.network import SSEPT


def model_scorer(
    model: SSEPT, batch_size: int = 256, group_size: int = 64
) -> Callable[[Any, Any], Any]:
    """The evaluation harness's scorer for a torch model (eval mode, no gradients).

    Rows are scored in groups of ``group_size`` of similar history length, each with its
    padding columns trimmed (histories are left-padded, and padding is masked everywhere):
    the same scores for less attention compute, as in training (``_accumulate_gradients``).
    """

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        was_training = model.training
        device = next(model.parameters()).device
        lengths = (history != 0).sum(1)
        out = np.empty((len(users), model.shape.num_items + 1), dtype=np.float32)
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(users), batch_size):
                    chunk = np.arange(start, min(start + batch_size, len(users)))
                    chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
                    for rows in np.array_split(chunk, -(-len(chunk) // group_size)):
                        length = max(1, int(lengths[rows].max()))
                        out[rows] = (
                            model(
                                torch.from_numpy(users[rows]).to(device),
                                torch.from_numpy(history[rows, -length:]).to(device),
                            )
                            .cpu()
                            .numpy()
                        )
        finally:
            model.train(was_training)
        return out

    return score
