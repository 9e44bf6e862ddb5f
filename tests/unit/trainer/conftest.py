"""Small data for the trainer's unit tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_trainer.data.snapshot import Snapshot, build_snapshot
from recops_trainer.data.split import Split, leave_one_out
from recops_trainer.data.synthetic import generate


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_snapshot() -> Snapshot:
    frame = generate(num_users=120, num_items=60, min_length=6, max_length=20, seed=3)
    return build_snapshot(frame, DatasetSource(format=DatasetFormat.SYNTHETIC, minInteractions=2))


@pytest.fixture(scope="session")
def synthetic_split(synthetic_snapshot: Snapshot) -> Split:
    return leave_one_out(synthetic_snapshot)


@pytest.fixture
def tiny_split() -> Split:
    """Three users over 6 items, written out by hand."""
    train = [np.array([1, 2, 3], np.int64), np.array([2, 4], np.int64), np.array([5], np.int64)]
    return Split(
        train=train,
        valid=np.array([4, 5, 0], np.int64),
        test=np.array([5, 6, 0], np.int64),
        num_users=3,
        num_items=6,
    )
