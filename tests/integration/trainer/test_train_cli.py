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

    from recops_trainer.model_io import load_model

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


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("dataset: {format: synthetic}\nmodel: {maxlen: 1}\n")
    done = recops(tmp_path, "train", "--config", "bad.yaml")
    assert done.returncode == 2
    assert "model.maxlen" in done.stderr


def test_gate_rejects_worse_and_accepts_better(trained: tuple[Path, dict[str, Any]]) -> None:
    from mlflow import MlflowClient

    from recops_trainer.config import OfflineGate
    from recops_trainer.registry import register_and_gate

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


def test_resume_continues_a_stopped_run(trained: tuple[Path, dict[str, Any]]) -> None:
    work, summary = trained
    (work / "longer.yaml").write_text(CONFIG.replace("epochs: 4", "epochs: 6"))
    done = recops(work, "train", "--config", "longer.yaml", "--resume", summary["mlflow_run_id"])
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads(done.stdout)
    assert resumed["output"] == summary["output"]
    assert resumed["epochs"] == 6
    assert "resuming from" in done.stderr


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
    click = {
        "kind": "feedback",
        "ts": 1.7e9,
        "request_id": "",
        "user_id": "new-user",
        "version": "v1",
        "item_id": "new-item",
        "event": "click",
        "value": 0.0,
        "recommended": False,
    }
    (logs / "0001.jsonl").write_text(json.dumps(click) + "\nnot json\n")
    done = recops(
        tmp_path, "data", "ingest", "--snapshot", "snap", "--feedback-log", "logs", "--out", "new"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads(done.stdout)
    assert manifest["lineage"]["parent"] == parent["hash"] != manifest["hash"]
    assert manifest["stats"]["interactions"] == parent["stats"]["interactions"] + 1
    assert manifest["lineage"]["ingested"]["invalid"] == 1
    assert "skipped: pod-0/0001.jsonl:2:" in done.stderr
    missing = recops(
        tmp_path, "data", "ingest", "--snapshot", "snap", "--feedback-log", "nope", "--out", "x"
    )
    assert missing.returncode == 2 and "nope is not a folder" in missing.stderr
