"""A small trained SSE-PT model on synthetic data, and its export bundle (built once)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

# Small enough to train in seconds on 2 cores, trained enough that rankings are not ties.
TINY_CONFIG = {
    "dataset": {"format": "synthetic"},
    "model": {
        "maxlen": 24,
        "itemDim": 16,
        "userDim": 16,
        "numBlocks": 2,
        "numHeads": 2,
        "dropout": 0.1,
        "epochs": 12,
        "batchSize": 64,
        "learningRate": 0.005,
        "seed": 7,
    },
    "training": {"evalEvery": 6, "threads": 1, "evalUsers": 200},
}
EDGE_MAXLEN = 12


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from recops_trainer.config import TrainConfig
    from recops_trainer.runs.train import run_training

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-run")
    outcome = run_training(TrainConfig.model_validate(TINY_CONFIG), out_dir=out)
    assert outcome.model_dir is not None
    return outcome.model_dir


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recops_trainer.compile.export import export_bundle

    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out = tmp_path_factory.mktemp("bundle") / "export"
    export_bundle(
        tiny_model, out, parity_users=1000, calibration_users=128, edge_maxlen=EDGE_MAXLEN
    )
    return out


@pytest.fixture(scope="session")
def sasrec_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny configuration as SASRec (no user embeddings), briefly trained and exported."""
    import copy

    import torch

    from recops_trainer.compile.export import export_bundle
    from recops_trainer.config import TrainConfig
    from recops_trainer.runs.train import run_training

    torch.set_num_threads(1)
    config = copy.deepcopy(TINY_CONFIG)
    config["model"] |= {"architecture": "sasrec", "epochs": 4}
    run = tmp_path_factory.mktemp("sasrec-run")
    outcome = run_training(TrainConfig.model_validate(config), out_dir=run)
    assert outcome.model_dir is not None
    out = tmp_path_factory.mktemp("sasrec-bundle") / "export"
    export_bundle(
        outcome.model_dir, out, parity_users=300, calibration_users=64, edge_maxlen=EDGE_MAXLEN
    )
    return out
