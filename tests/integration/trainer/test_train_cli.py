"""`recops data prepare`, `recops train`, `recops evaluate` with MLflow on SQLite, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recops_cli.quickstart.processes import free_port
from recops_testkit.processes import start_mlflow_server, stop, wait_until_ready
from recops_trainer.training.hooks import CHECKPOINT_DIR, STATE_FILE
from recops_trainer.training.state import TrainState

CONFIG = """
dataset: {format: synthetic}
model: {maxlen: 20, itemDim: 16, userDim: 8, epochs: 4, batchSize: 32}
resources: {checkpointEvery: 2}
training: {evalEvery: 2, threads: 1}
gate: {minimum: 0.0}
mlflow: {registeredModelName: movies}
trainingRun: ml/movies-1
"""


def recops(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env["MLFLOW_ENABLE_TELEMETRY"] = "false"
    exe = Path(sys.executable).parent / "recops"
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    work = tmp_path_factory.mktemp("train")
    (work / "train.yaml").write_text(CONFIG)
    done = recops(work, "train", "--config", "train.yaml", "--output", "out", "--backend", "local")
    assert done.returncode == 0, done.stderr[-3000:]
    return work, json.loads(done.stdout)


def test_train_writes_the_model_folder_and_registers_a_candidate(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    work, summary = trained
    assert summary["synthetic"] is True
    assert summary["epochs"] == 4
    assert summary["registered_model"] == "movies"
    assert summary["model_version"] == "1"
    assert summary["gate"]["verdict"] == "candidate"
    model_dir = work / summary["model_dir"]
    assert {p.name for p in model_dir.iterdir()} >= {"config.json", "weights.pt", "id_maps.json"}
    assert (
        json.loads((model_dir / "data_manifest.json").read_text())["hash"]
        == (summary["dataset_hash"])
    )
    assert (work / "out" / "checkpoint" / "state.pt").is_file()
    for protocol in ("sampled", "full"):
        assert summary["test"][protocol]["protocol"] == protocol


def test_mlflow_run_holds_params_metrics_artifacts_and_tags(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    from mlflow import MlflowClient

    work, summary = trained
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["model.maxlen"] == "20"
    assert run.data.tags["recops.training_run"] == "ml/movies-1"
    assert run.data.tags["recops.dataset_hash"] == summary["dataset_hash"]
    assert run.data.tags["recops.gate"] == "candidate"
    assert run.data.tags["recops.model_version"] == "1"
    for name in (
        "test_sampled_ndcg_at_10",
        "test_sampled_hr_at_10",
        "test_full_ndcg_at_10",
        "test_full_hr_at_10",
    ):
        assert name in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "val_ndcg_at_10")
    assert [m.step for m in history] == [2, 4]
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"training_curve.png", "recops_model"} <= artifacts
    version = client.get_model_version("movies", "1")
    assert version.tags["recops.dataset_hash"] == summary["dataset_hash"]
    assert str(client.get_model_version_by_alias("movies", "candidate").version) == "1"


def test_registered_model_loads_back_and_scores_identically(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    import mlflow
    import mlflow.pytorch

    from recops_trainer.model.folder import load_model

    work, summary = trained
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    from_registry = mlflow.pytorch.load_model("models:/movies/1").eval()
    local = load_model(work / summary["model_dir"]).model
    users = torch.tensor([1, 5, 9])
    history = torch.from_numpy(np.random.default_rng(0).integers(0, 50, size=(3, 20)))
    with torch.no_grad():
        assert torch.equal(from_registry(users, history), local(users, history))


def test_evaluate_json_names_protocols_and_hash(trained: tuple[Path, dict[str, Any]]) -> None:
    work, summary = trained
    done = recops(
        work,
        "evaluate",
        "--model",
        summary["model_dir"],
        "--snapshot",
        "out/snapshot",
        "--json",
        "--baselines",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["dataset_hash"] == summary["dataset_hash"]
    assert set(result["protocols"]) == {"sampled", "full"}
    assert set(result["models"]) == {"model", "pop", "markov"}
    # Evaluation is seeded: the same numbers as training's own test pass.
    assert result["metrics"]["sampled"]["ndcg@10"] == pytest.approx(
        summary["test"]["sampled"]["ndcg@10"]
    )


def test_data_prepare_writes_a_snapshot(tmp_path: Path) -> None:
    done = recops(tmp_path, "data", "prepare", "--format", "synthetic", "--out", "snap")
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert manifest["synthetic"] is True
    assert manifest == json.loads(done.stdout)
    assert (tmp_path / "snap" / "interactions.parquet").is_file()


def test_train_registers_its_model_through_an_mlflow_server(tmp_path: Path) -> None:
    """A tracking server checks what a local store does not: the registered version must name
    the logged model it comes from."""
    root = tmp_path / "server"
    root.mkdir()
    port = free_port()
    server = start_mlflow_server(root, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(server, f"{url}/health", "mlflow server", root / "server.log")
        config = CONFIG.replace(
            "mlflow: {registeredModelName: movies}",
            f"mlflow: {{registeredModelName: movies, trackingUri: '{url}'}}",
        )
        (tmp_path / "train.yaml").write_text(config)
        done = recops(
            tmp_path, "train", "--config", "train.yaml", "--output", "out", "--backend", "local"
        )
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        from mlflow import MlflowClient

        version = MlflowClient(url).get_model_version("movies", summary["model_version"])
        assert version.run_id == summary["mlflow_run_id"]
    finally:
        stop(server)


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("dataset: {format: synthetic}\nmodel: {maxlen: 1}\n")
    done = recops(tmp_path, "train", "--config", "bad.yaml")
    assert done.returncode == 2
    assert "model.maxlen" in done.stderr


def test_gate_rejects_worse_and_accepts_better(trained: tuple[Path, dict[str, Any]]) -> None:
    from mlflow import MlflowClient

    from recops_contracts.training import OfflineGate
    from recops_trainer.tracking.registry import register_and_gate

    work, summary = trained
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    client.set_registered_model_alias("movies", "champion", "1")
    champion = summary["test"]["sampled"]["ndcg@10"]
    source = client.get_model_version("movies", "1").source
    gate = OfflineGate.model_validate({"marginOverChampion": 0.01})
    outcomes = {}
    for label, delta in (("worse", -0.05), ("better", 0.05)):
        version, decision = register_and_gate(
            client,
            name="movies",
            model_uri=source,
            run_id=summary["mlflow_run_id"],
            metrics={"test_sampled_ndcg_at_10": champion + delta},
            gate=gate,
            dataset_hash=summary["dataset_hash"],
        )
        outcomes[label] = version
        tags = client.get_model_version("movies", version).tags
        assert tags["recops.gate"] == decision.verdict
    assert client.get_model_version("movies", outcomes["worse"]).tags["recops.gate"] == "rejected"
    assert (
        "champion"
        in client.get_model_version("movies", outcomes["worse"]).tags["recops.gate_reason"]
    )
    assert (
        str(client.get_model_version_by_alias("movies", "candidate").version) == outcomes["better"]
    )
    # Nothing here moves the champion.
    assert str(client.get_model_version_by_alias("movies", "champion").version) == "1"


def _checkpoint(work: Path, output: str) -> TrainState:
    return TrainState.load(work / output / CHECKPOINT_DIR / STATE_FILE)


def test_resume_continues_a_stopped_run(trained: tuple[Path, dict[str, Any]]) -> None:
    work, summary = trained
    stopped = _checkpoint(work, summary["output"])
    assert stopped.epoch == 4
    (work / "longer.yaml").write_text(CONFIG.replace("epochs: 4", "epochs: 6"))
    done = recops(work, "train", "--config", "longer.yaml", "--resume", summary["mlflow_run_id"])
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads(done.stdout)
    assert resumed["output"] == summary["output"]
    assert resumed["epochs"] == 6
    assert "resuming from" in done.stderr
    # It trained epochs 5 and 6 only: the first four are the stopped run's, wall-clock
    # seconds included (a run retrained from scratch measures its own).
    continued = _checkpoint(work, summary["output"])
    assert continued.epoch == 6
    assert [row["epoch"] for row in continued.history] == [1, 2, 3, 4, 5, 6]
    assert continued.history[:4] == stopped.history
    assert continued.history[4]["elapsed"] > stopped.history[-1]["elapsed"]
    # The folder form of --resume continues the same run again.
    (work / "longest.yaml").write_text(CONFIG.replace("epochs: 4", "epochs: 8"))
    done = recops(work, "train", "--config", "longest.yaml", "--resume", summary["output"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["epochs"] == 8
    assert "resuming from" in done.stderr
    again = _checkpoint(work, summary["output"])
    assert [row["epoch"] for row in again.history] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert again.history[:6] == continued.history


def test_no_track_trains_without_mlflow(tmp_path: Path) -> None:
    (tmp_path / "train.yaml").write_text(
        CONFIG.replace("epochs: 4", "epochs: 2").replace("evalEvery: 2", "evalEvery: 1")
    )
    done = recops(tmp_path, "train", "--config", "train.yaml", "--output", "out", "--no-track")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert "mlflow_run_id" not in summary and "gate" not in summary
    assert summary["test"]["full"]["users"] > 0
    assert (tmp_path / "out" / "model" / "weights.pt").is_file()
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_data_ingest_writes_a_snapshot_with_lineage(tmp_path: Path) -> None:
    assert (
        recops(tmp_path, "data", "prepare", "--format", "synthetic", "--out", "snap").returncode
        == 0
    )
    parent = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    logs = tmp_path / "logs" / "pod-0"
    logs.mkdir(parents=True)
    # A new user joins with as many interactions as the parent's `min_interactions` asks.
    clicks = [
        {
            "kind": "feedback",
            "ts": 1.7e9 + i,
            "request_id": "",
            "user_id": "new-user",
            "version": "v1",
            "item_id": f"new-item-{i}",
            "event": "click",
            "value": 0.0,
            "recommended": False,
        }
        for i in range(parent["min_interactions"])
    ]
    lines = [json.dumps(click) for click in clicks]
    (logs / "0001.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    done = recops(
        tmp_path, "data", "ingest", "--snapshot", "snap", "--feedback-log", "logs", "--out", "new"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads(done.stdout)
    assert manifest["lineage"]["parent"] == parent["hash"] != manifest["hash"]
    assert manifest["stats"]["interactions"] == (
        parent["stats"]["interactions"] + parent["min_interactions"]
    )
    assert manifest["lineage"]["ingested"]["invalid"] == 1
    assert "skipped: pod-0/0001.jsonl:2:" in done.stderr
    missing = recops(
        tmp_path, "data", "ingest", "--snapshot", "snap", "--feedback-log", "nope", "--out", "x"
    )
    assert missing.returncode == 2 and "nope is not a folder" in missing.stderr
