"""Issue 27, finding 12: resume checkpoints load with ``weights_only=True``."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from recops_trainer.training.state import TrainState


def test_a_checkpoint_of_tensors_and_primitives_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    state = TrainState(
        epoch=3,
        model_state={"w": torch.ones(2, 2)},
        optimizer_state={"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3}]},
        sampler_state=dict(rng.bit_generator.state),
        torch_rng=torch.get_rng_state(),
        history=[{"epoch": 1, "loss": 0.5}],
    )
    state.save(tmp_path / "state.pt")
    loaded = TrainState.load(tmp_path / "state.pt")
    assert loaded.epoch == 3
    assert loaded.sampler_state == state.sampler_state
    assert torch.equal(loaded.model_state["w"], state.model_state["w"])


class _Payload:
    """Unpickling this would call ``print``; a weights-only load must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled",))


def test_a_checkpoint_holding_an_object_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"epoch": 1, "evil": _Payload()}, buffer)
    (tmp_path / "state.pt").write_bytes(buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError):
        TrainState.load(tmp_path / "state.pt")
