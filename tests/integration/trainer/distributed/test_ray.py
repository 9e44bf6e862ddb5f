"""Ray Train (data parallel, fault recovery) and Ray Tune, on a private local Ray."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recops_trainer.config import TrainConfig, parse_config
from recops_trainer.data.snapshot import Snapshot, write_snapshot
from recops_trainer.data.sources import load_source
from recops_trainer.data.split import leave_one_out

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray

    from recops_trainer.distributed.ray_train import LOCAL_SYSTEM_CONFIG

    os.environ.pop("RAY_ADDRESS", None)
    for attempt in range(3):
        # A short temp path: Ray's socket names must fit in 107 characters.
        temp = tmp_path_factory.mktemp("ray")
        try:
            ray.init(
                _node_ip_address="127.0.0.1",
                _temp_dir=str(temp),
                include_dashboard=False,
                num_cpus=4,
                configure_logging=False,
                _system_config=LOCAL_SYSTEM_CONFIG,
            )
            break
        except Exception as exc:
            # Ray gives up when the raylet has not registered within 30 s. Once in a full
            # run (after hundreds of tests in this process) that happened, the raylet
            # leaving no log: start over in a fresh folder. Anything else, or a third
            # timeout, fails the module. (The half-started daemons die with this process.)
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            ray.shutdown()
    yield
    ray.shutdown()


def config(data: dict[str, object], workers: int, **model: object) -> TrainConfig:
    base = {"maxlen": 30, "itemDim": 24, "userDim": 8, "epochs": 4, "batchSize": 64}
    return parse_config(
        {
            "dataset": data,
            "model": base | model,
            "resources": {"workers": workers, "cpusPerWorker": 1, "checkpointEvery": 2},
            "training": {"evalEvery": 2, "threads": 1},
        }
    )


def prepared(cfg: TrainConfig, folder: Path) -> tuple[Snapshot, Path]:
    snap = load_source(cfg.dataset)
    return snap, write_snapshot(snap, folder)


def test_two_workers_match_one_worker(ray_local: None, shared_data: Path, tmp_path: Path) -> None:
    from recops_trainer.distributed.ray_train import fit_on_ray
    from recops_trainer.evaluation.evaluator import evaluate
    from recops_trainer.evaluation.scoring import model_scorer
    from recops_trainer.evaluation.users import Stage
    from recops_trainer.training.steps import build_model

    data = {"format": "movielens-100k", "uri": str(shared_data / "ml-100k" / "u.data.gz")}
    scores = {}
    for workers in (1, 2):
        cfg = config(data, workers)
        snap, folder = prepared(cfg, tmp_path / f"snap{workers}")
        state = fit_on_ray(cfg, folder, str(tmp_path / "ray"), name=f"w{workers}")
        assert state.epoch == 4
        split = leave_one_out(snap)
        model = build_model(split, cfg.model)
        model.load_state_dict(state.best_model_state)
        result = evaluate(split, model_scorer(model), maxlen=30, stage=Stage.VALID)
        scores[workers] = result["sampled"]["ndcg@10"]
    # The same global batch and steps: equal quality within noise.
    assert abs(scores[2] - scores[1]) < 0.05, scores
    assert min(scores.values()) > 0.1, scores


def test_a_lost_worker_is_replaced_and_training_resumes(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recops_trainer.distributed.ray_train import FAULT_EPOCH_ENV, FAULT_MARKER_ENV, fit_on_ray

    marker = tmp_path / "fail-once"
    marker.write_text("")
    monkeypatch.setenv(FAULT_EPOCH_ENV, "3")
    monkeypatch.setenv(FAULT_MARKER_ENV, str(marker))
    cfg = config({"format": "synthetic"}, 2, epochs=5)
    _, folder = prepared(cfg, tmp_path / "snap")
    state = fit_on_ray(cfg, folder, str(tmp_path / "ray"), name="faulty")
    assert not marker.exists()  # the worker did fail at epoch 3
    assert state.epoch == 5
    # Restarted from the epoch-2 checkpoint: every epoch appears once in the history.
    assert [h["epoch"] for h in state.history] == [1, 2, 3, 4, 5]


def test_the_rank_0_worker_logs_each_epoch_to_mlflow_as_it_trains(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from recops_trainer.distributed.ray_train import fit_on_ray
    from recops_trainer.tracking.mlflow_run import logged_steps, portable_uri

    # A relative SQLite URI, as a user may write it: the workers run in another folder.
    monkeypatch.chdir(tmp_path)
    uri = portable_uri("sqlite:///live.db")
    assert uri == f"sqlite:///{tmp_path / 'live.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("live")).info.run_id
    cfg = config({"format": "synthetic"}, 2, epochs=3)
    _, folder = prepared(cfg, tmp_path / "snap")
    fit_on_ray(cfg, folder, str(tmp_path / "ray"), name="live", mlflow_run=(uri, run_id))
    # Nothing but the worker wrote to the run: every epoch is there, once, with validation.
    assert logged_steps(client, run_id) == {1, 2, 3}
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(run_id, "val_ndcg_at_10")] == [2, 3]


def test_recops_train_on_ray_tracks_every_epoch_once(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker logs the epochs; the driver adds only what it could not (nothing here)."""
    from mlflow import MlflowClient

    from recops_trainer.runs.train import run_train

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = parse_config(
        {
            "dataset": {"format": "synthetic"},
            "model": {"maxlen": 20, "itemDim": 16, "userDim": 8, "epochs": 3, "batchSize": 64},
            "resources": {"workers": 2, "cpusPerWorker": 1},
            "training": {"evalEvery": 1, "threads": 1},
            "mlflow": {"trackingUri": "sqlite:///runs.db", "registeredModelName": "on-ray"},
        }
    )
    summary = run_train(cfg, output=tmp_path / "out", backend="ray")
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs.db'}")
    run_id = summary["mlflow_run_id"]
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(run_id, "epoch_seconds")] == [1, 2, 3]
    assert client.get_run(run_id).data.tags["recops.backend"] == "ray"


def test_tune_runs_four_trials_and_registers_the_best(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from recops_trainer.runs.tune import run_tune

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = parse_config(
        {
            "dataset": {"format": "synthetic"},
            "model": {"maxlen": 20, "itemDim": 16, "userDim": 8, "epochs": 4, "batchSize": 64},
            "training": {"evalEvery": 2, "threads": 1},
            "mlflow": {"registeredModelName": "tuned"},
            "tune": {
                "numSamples": 4,
                "maxConcurrent": 2,
                "searchSpace": {
                    "learningRate": {"distribution": "loguniform", "low": 1e-3, "high": 1e-2},
                    "dropout": {"distribution": "choice", "values": [0.1, 0.3]},
                },
            },
        }
    )
    summary = run_tune(cfg, output=tmp_path / "tune")
    assert len(summary["trials"]) == 4
    best = max(summary["trials"], key=lambda t: t["metrics"].get("val_ndcg_at_10", 0))
    assert summary["best_config"] == best["config"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 4
    assert (
        str(client.get_model_version_by_alias("tuned", "candidate").version)
        == (summary["model_version"])
    )
