"""Evaluating a saved model folder on its data, beside the baselines (``recops evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recops_contracts.training import DatasetSource, EvaluationProtocol
from recops_trainer.data.genres import load_genres
from recops_trainer.data.prepared.reader import is_prepared
from recops_trainer.data.snapshot import Snapshot, read_snapshot
from recops_trainer.data.sources import load_source
from recops_trainer.data.split import leave_one_out
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.evaluation.scoring import model_scorer
from recops_trainer.evaluation.users import Stage
from recops_trainer.model.baselines import Markov, Popularity
from recops_trainer.model.folder import load_model


def _snapshot(
    manifest: dict[str, Any], dataset: DatasetSource | None, snapshot_dir: Path | None
) -> Snapshot:
    if snapshot_dir is not None:
        return read_snapshot(snapshot_dir)
    if dataset is None:
        raise ValueError("name the data: --config (its dataset section) or --snapshot")
    return load_source(dataset)


def evaluate_model_folder(
    model_dir: Path,
    *,
    dataset: DatasetSource | None = None,
    snapshot_dir: Path | None = None,
    baselines: bool = False,
    movies: Path | None = None,
    item_ids: Path | None = None,
    users: int | None = None,
) -> dict[str, Any]:
    """Test metrics under both protocols, labelled, with the dataset hash; on a seeded
    subsample of ``users`` users when given (quick checks of large data), recorded."""
    loaded = load_model(model_dir)
    if snapshot_dir is not None and is_prepared(snapshot_dir):
        return _evaluate_prepared(loaded, snapshot_dir, users, baselines)
    snapshot = _snapshot(loaded.data_manifest, dataset, snapshot_dir)
    expected = loaded.data_manifest.get("hash")
    if expected and expected != snapshot.hash:
        raise ValueError(
            f"the model was trained on dataset {expected[:12]}, this data is "
            f"{snapshot.hash[:12]}; evaluate on the same snapshot"
        )
    split = leave_one_out(snapshot)
    genres = load_genres(movies, snapshot.item_ids, item_ids) if movies else None
    maxlen = loaded.model.shape.maxlen
    scorers: dict[str, Any] = {"model": model_scorer(loaded.model)}
    if baselines:
        scorers["pop"] = Popularity(split)
        scorers["markov"] = Markov(split)
    results = {
        name: evaluate(
            split,
            scorer,
            maxlen=maxlen,
            stage=Stage.TEST,
            protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
            genres=genres,
            limit=users,
        )
        for name, scorer in scorers.items()
    }
    return _report(loaded, snapshot.hash, snapshot.manifest, results, users, snapshot.num_users)


def _report(
    loaded: Any,
    dataset_hash: str,
    manifest: dict[str, Any],
    results: dict[str, Any],
    users: int | None,
    of: int,
) -> dict[str, Any]:
    return {
        "dataset_hash": dataset_hash,
        "synthetic": bool(manifest.get("synthetic")),
        "protocols": {
            "sampled": "held-out item vs 100 uniformly drawn items the user never interacted "
            "with (SSE-PT reference)",
            "full": "held-out item vs every item, the user's history excluded",
        },
        "subsample": {"users": users if users is not None and users < of else None, "of": of},
        "model_version": loaded.model_version,
        "architecture": loaded.config.get("architecture"),
        "metrics": results["model"],
        "models": results,
    }


def _evaluate_prepared(
    loaded: Any, folder: Path, users: int | None, baselines: bool
) -> dict[str, Any]:
    """A prepared (per-user Parquet) snapshot, read row group by row group."""
    from recops_trainer.data.prepared.reader import read_manifest
    from recops_trainer.evaluation.prepared import PreparedUsers

    if baselines:
        raise ValueError("--baselines needs an in-memory snapshot; a prepared one has none")
    manifest = read_manifest(folder)
    expected = loaded.data_manifest.get("hash")
    if expected and expected != manifest["hash"]:
        raise ValueError(
            f"the model was trained on dataset {expected[:12]}, this data is "
            f"{manifest['hash'][:12]}; evaluate on the same snapshot"
        )
    result = evaluate(
        PreparedUsers(folder),
        model_scorer(loaded.model),
        maxlen=loaded.model.shape.maxlen,
        stage=Stage.TEST,
        limit=users,
    )
    of = int(manifest["stats"]["users"])
    return _report(loaded, manifest["hash"], manifest, {"model": result}, users, of)
