"""Learning checks on data: synthetic (always) and ML-100K (when the shared data is present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_trainer.config import parse_config
from recops_trainer.data.snapshot import build_snapshot
from recops_trainer.data.split import leave_one_out
from recops_trainer.data.synthetic import generate
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.model.baselines import Popularity
from recops_trainer.runs.train import run_training

pytestmark = pytest.mark.slow


def test_on_synthetic_data_the_model_beats_popularity() -> None:
    snap = build_snapshot(generate(num_users=200), DatasetSource(format=DatasetFormat.SYNTHETIC))
    cfg = parse_config(
        {
            "dataset": {"format": "synthetic"},
            "model": {
                "maxlen": 20,
                "itemDim": 32,
                "userDim": 16,
                "epochs": 12,
                "batchSize": 16,
                "sseUserProb": 0.5,
            },
            "training": {"evalEvery": 6, "threads": 1},
        }
    )
    outcome = run_training(cfg, snapshot=snap)
    split = leave_one_out(snap)
    pop = evaluate(split, Popularity(split), maxlen=20)
    for protocol in ("sampled", "full"):
        assert outcome.test[protocol]["ndcg@10"] > pop[protocol]["ndcg@10"], protocol


def test_ml100k_short_run_beats_popularity(shared_data: Path) -> None:
    uri = shared_data / "ml-100k" / "u.data.gz"
    cfg = parse_config(
        {
            "dataset": {"format": "movielens-100k", "uri": str(uri)},
            "model": {"maxlen": 50, "epochs": 10, "batchSize": 32},
            "training": {"evalEvery": 5, "threads": 1},
        }
    )
    outcome = run_training(cfg)
    assert outcome.snapshot.manifest["stats"]["users"] == 943
    split = leave_one_out(outcome.snapshot)
    pop = evaluate(split, Popularity(split), maxlen=50)
    assert outcome.test["sampled"]["ndcg@10"] > pop["sampled"]["ndcg@10"]
