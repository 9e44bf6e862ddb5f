"""`recops compile`: the compile Job's entrypoint, from a model folder or an MLflow URI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recops_cli.main import app

runner = CliRunner()


def test_compile_writes_a_checked_engine(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "engine"
    result = runner.invoke(
        app,
        [
            "compile",
            "--model",
            str(tiny_model),
            "--target",
            "cpu-onnxruntime",
            "--out",
            str(out),
            "--threads",
            "1",
            "--latency-seconds",
            "0",
            "--calibration-users",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["target"] == "cpu-onnxruntime"
    assert summary["parity"]["top10_overlap"] >= 0.99
    from recops_runtime.engines import load_engine

    engine = load_engine(out)
    assert engine.manifest.model_version == summary["model_version"]
    # Running it again does not overwrite the engine unless asked.
    again = runner.invoke(
        app,
        ["compile", "--model", str(tiny_model), "--target", "cpu-onnxruntime", "--out", str(out)],
    )
    assert again.exit_code == 2
    assert "already exists" in again.output


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("cpu-tensorflow", 2, "unknown target 'cpu-tensorflow': choose one of"),
        ("gpu-tensorrt", 3, "TensorRT"),
        ("gpu-onnxruntime-cuda", 3, "needs CUDA"),
    ],
)
def test_compile_refuses_before_any_work(
    target: str, code: int, message: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "compile",
            "--model",
            str(tmp_path / "no-model"),
            "--target",
            target,
            "--out",
            str(tmp_path / "engine"),
        ],
    )
    assert result.exit_code == code
    assert message in result.output
    assert not (tmp_path / "engine").exists()


def test_compile_names_a_missing_model_folder(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "compile",
            "--model",
            str(tmp_path / "absent"),
            "--target",
            "cpu-torch",
            "--out",
            str(tmp_path / "engine"),
        ],
    )
    assert result.exit_code == 2
    assert "no such folder" in result.output
    assert not (tmp_path / "engine").exists()


def test_an_mlflow_uri_resolves_to_the_logged_model_folder(
    tiny_model: Path, tmp_path: Path
) -> None:
    import mlflow

    from recops_trainer.compile.model_source import resolve_model_uri

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("engines", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(tiny_model), artifact_path="model")
    folder = resolve_model_uri(f"runs:/{run.info.run_id}/model", tmp_path / "download")
    assert (folder / "weights.pt").read_bytes() == (tiny_model / "weights.pt").read_bytes()
    assert (folder / "config.json").is_file()


def test_export_refuses_data_the_model_was_not_trained_on(tiny_model: Path, tmp_path: Path) -> None:
    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.compile.export import export_bundle
    from recops_trainer.compile.model_source import ExportError
    from recops_trainer.data.snapshot import write_snapshot
    from recops_trainer.data.sources import load_source

    other = write_snapshot(
        load_source(DatasetSource(format=DatasetFormat.SYNTHETIC), synthetic_seed=8),
        tmp_path / "other-snapshot",
    )
    with pytest.raises(ExportError, match="not the data this model was trained on"):
        export_bundle(tiny_model, tmp_path / "export", data=str(other))
