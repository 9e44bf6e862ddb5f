"""`recops train` on the large formats: the archive is prepared once into per-user Parquet
rows, then trained in memory (small data) or streamed by Ray Train workers through Ray
Data (large data, or when asked for), and the summary says which was chosen."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recops_trainer.config import parse_config
from recops_trainer.data.synthetic_archives import SyntheticSize, write_ml1b_tar, write_ml20m_zip
from recops_trainer.runs.train import run_train

pytestmark = pytest.mark.slow
MODEL = {"maxlen": 20, "itemDim": 16, "userDim": 8, "numBlocks": 1, "batchSize": 32}
TRAINING = {"evalEvery": 1, "evalUsers": 100, "threads": 1}


def test_movielens_1b_streams_from_the_prepared_snapshot_on_two_workers(tmp_path: Path) -> None:
    os.environ.pop("RAY_ADDRESS", None)
    archive = write_ml1b_tar(
        tmp_path / "ml-20mx16x32.tar", SyntheticSize(users=400, items=211, mean_length=15)
    )
    config = parse_config(
        {
            "dataset": {"format": "movielens-1b", "uri": str(archive), "pipeline": "streaming"},
            "model": MODEL | {"epochs": 2},
            "resources": {"workers": 2, "cpusPerWorker": 1},
            "training": TRAINING,
        }
    )
    summary = run_train(config, output=tmp_path / "run", track=False)
    assert summary["pipeline"] == {"chosen": "streaming", "reason": "dataset.pipeline is streaming"}
    assert summary["epochs"] == 2
    prepared = json.loads((tmp_path / "run" / "prepared" / "manifest.json").read_text())
    assert summary["dataset_hash"] == prepared["hash"] and prepared["ordered"] is False
    users = prepared["stats"]["users"]
    for protocol in ("sampled", "full"):
        test = summary["test"][protocol]
        assert test["subsample"] == {"users": 100, "of": users} and test["users"] == 100
    model = tmp_path / "run" / "model"
    id_maps = json.loads((model / "id_maps.json").read_text())
    assert len(id_maps["users"]) == users and id_maps["popular_items"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pipeline"] == "streaming"
    # `recops evaluate --snapshot <prepared> --users 50`: batched, on a recorded subsample.
    from recops_trainer.evaluation.offline import evaluate_model_folder

    again = evaluate_model_folder(model, snapshot_dir=tmp_path / "run" / "prepared", users=50)
    assert again["dataset_hash"] == prepared["hash"]
    assert again["subsample"] == {"users": 50, "of": users}
    assert again["metrics"]["full"]["users"] == 50


def test_ray_data_prepares_the_same_snapshot_as_one_process(tmp_path: Path) -> None:
    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.data.prepared.reader import to_snapshot
    from recops_trainer.data.prepared.writer import prepare
    from recops_trainer.distributed.ray_train import ray_session

    os.environ.pop("RAY_ADDRESS", None)
    archive = write_ml1b_tar(tmp_path / "ml1b.tar", SyntheticSize(users=300, items=101), shards=4)
    source = DatasetSource(format=DatasetFormat.MOVIELENS_1B)
    here = prepare(source, archive, tmp_path / "here", buckets=3, use_ray=False)
    with ray_session(num_cpus=2):
        on_ray = prepare(source, archive, tmp_path / "ray", buckets=3, use_ray=True)
    assert on_ray["preparation"]["engine"] == "ray-data"
    assert on_ray["hash"] == here["hash"] and on_ray["stats"] == here["stats"]
    a, b = to_snapshot(tmp_path / "here"), to_snapshot(tmp_path / "ray")
    assert all((x == y).all() for x, y in zip(a.sequences, b.sequences, strict=True))


def test_a_small_ml20m_zip_trains_in_memory_from_its_prepared_rows(tmp_path: Path) -> None:
    archive = write_ml20m_zip(tmp_path / "ml-20m.zip", SyntheticSize(users=150, items=97))
    config = parse_config(
        {
            "dataset": {
                "format": "movielens-20m",
                "uri": str(archive),
                "preparedDir": str(tmp_path / "prepared"),
            },
            "model": MODEL | {"epochs": 1},
            "resources": {"workers": 1},
            "training": TRAINING,
        }
    )
    summary = run_train(config, output=tmp_path / "run", backend="local", track=False)
    assert summary["pipeline"]["chosen"] == "in-memory"
    assert "interactions <=" in summary["pipeline"]["reason"]
    prepared = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    assert summary["dataset_hash"] == prepared["hash"] and prepared["ordered"] is True
    assert (tmp_path / "run" / "model" / "id_maps.json").is_file()
