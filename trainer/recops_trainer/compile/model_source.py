"""The model to compile and the data it was trained on: a model folder from a path or an
MLflow URI, and its dataset snapshot, checked against the hash the model recorded."""

from __future__ import annotations

from pathlib import Path

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_trainer.data.snapshot import MANIFEST, Snapshot, read_snapshot
from recops_trainer.data.sources import load_source
from recops_trainer.model.folder import WEIGHTS_FILE, LoadedModel


class ExportError(RuntimeError):
    """The model or its data cannot be exported as asked."""


def resolve_model_uri(uri: str, work_dir: Path) -> Path:
    """A local model folder for ``uri``: a path, or an MLflow ``models:/``/``runs:/`` URI."""
    if uri.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        import mlflow

        downloaded = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(work_dir))
        )
        folders = [p.parent for p in sorted(downloaded.rglob(WEIGHTS_FILE))]
        if not folders:
            raise ExportError(f"{uri} holds no model folder (no {WEIGHTS_FILE} in its artifacts)")
        return folders[0]
    path = Path(uri.removeprefix("file://"))
    if not path.is_dir():
        raise ExportError(
            f"--model {uri}: no such folder; give a model folder (with config.json and "
            f"{WEIGHTS_FILE}) or an MLflow URI such as models:/NAME/VERSION"
        )
    return path


def load_snapshot_of(
    loaded: LoadedModel, data: str | None, model_dir: Path | None = None
) -> Snapshot:
    """The dataset snapshot the model was trained on, checked against its recorded hash.

    ``data`` is a snapshot folder or the dataset's file. Without it: the snapshot that
    training wrote beside the model folder (``<output>/snapshot``), else what the model's
    data manifest names (a GroupLens download, or synthetic data).
    """
    manifest = loaded.data_manifest
    expected = manifest.get("hash")
    beside = model_dir.parent / "snapshot" if model_dir is not None else None
    if data is None and beside is not None and (beside / MANIFEST).is_file():
        data = str(beside)
    if data and (Path(data) / MANIFEST).is_file():
        snapshot = read_snapshot(Path(data))
    else:
        fmt = DatasetFormat(manifest["format"])
        source = DatasetSource(
            format=fmt, uri=data, min_interactions=int(manifest.get("min_interactions", 5))
        )
        seed = int(loaded.config.get("hyperparameters", {}).get("seed", 42))
        try:
            snapshot = load_source(source, synthetic_seed=seed)
        except Exception as error:
            raise ExportError(
                f"cannot read the model's dataset ({fmt.value}): {error}. Pass --data with the "
                "dataset file or snapshot folder it was trained on"
            ) from error
    if expected is not None and snapshot.hash != expected:
        raise ExportError(
            f"the data read ({snapshot.hash[:12]}...) is not the data this model was trained on "
            f"({str(expected)[:12]}...); pass --data with the model's own dataset"
        )
    return snapshot
