"""The exported serving graph computes the model's forward, also on shortened histories."""

from __future__ import annotations

import pytest
import torch

from recops_trainer.compile.serving_graph import ServingGraph
from recops_trainer.model.network import SSEPT, ModelShape


@pytest.mark.parametrize(("user_dim", "blocks", "heads"), [(16, 2, 2), (0, 1, 1), (8, 3, 4)])
def test_serving_graph_equals_forward(user_dim: int, blocks: int, heads: int) -> None:
    torch.manual_seed(0)
    shape = ModelShape(
        num_users=30,
        num_items=40,
        maxlen=20,
        item_dim=16,
        user_dim=user_dim,
        num_blocks=blocks,
        num_heads=heads,
    )
    model = SSEPT(shape).eval()
    graph = ServingGraph(model)
    users = torch.randint(0, 31, (5,))
    history = torch.randint(1, 41, (5, 20))
    for row, length in enumerate([0, 1, 5, 12, 20]):
        history[row, : 20 - length] = 0
    with torch.no_grad():
        expected = model(users, history)
        assert torch.allclose(graph(users, history), expected, atol=1e-5)
        # Rows whose history fits in 12 items score the same from their last 12 columns.
        short = graph(users[:4], history[:4, -12:])
    assert torch.allclose(short, expected[:4], atol=1e-5)
    assert not graph.training
