"""Tracking URIs handed to Ray workers, which run in another working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_trainer.tracking.mlflow_run import portable_uri


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert portable_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert portable_uri("mlruns") == str(tmp_path / "mlruns")


@pytest.mark.parametrize(
    "uri", ["sqlite:////data/mlflow.db", "http://mlflow.mlflow.svc:5000", "file:///data/mlruns"]
)
def test_absolute_and_remote_uris_stay(uri: str) -> None:
    assert portable_uri(uri) == uri
