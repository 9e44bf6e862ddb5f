"""The model folder: what training writes and what the exporter and evaluator read.

::

    config.json         model_version, num_users, num_items, maxlen, the network shape
                        and the camelCase hyperparameters it was trained with
    weights.pt          the state_dict
    id_maps.json        {"users": [...], "items": [...], "popular_items": [...]} (original ids
                        as strings in internal-id order from 1; popular_items are internal ids)
    data_manifest.json  the dataset snapshot manifest (with its ``hash``)
    metrics.json        offline metrics, keyed by protocol

A folder is written next to its destination and renamed into place, so a reader never
sees half of one (the long training run refreshes its best model this way).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from recops_runtime.folders import staged_folder
from recops_trainer.model.network import SSEPT, ModelShape

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
ID_MAPS_FILE = "id_maps.json"
MANIFEST_FILE = "data_manifest.json"
METRICS_FILE = "metrics.json"
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, ID_MAPS_FILE, MANIFEST_FILE, METRICS_FILE)


@dataclass
class IdMaps:
    """Original ids in internal-id order (internal id = index + 1)."""

    users: list[str]
    items: list[str]
    popular_items: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"users": self.users, "items": self.items, "popular_items": self.popular_items}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdMaps:
        return cls(
            users=[str(u) for u in data["users"]],
            items=[str(i) for i in data["items"]],
            popular_items=[int(i) for i in data.get("popular_items", [])],
        )


@dataclass
class LoadedModel:
    """A model folder read back: the network in eval mode and everything beside it."""

    model: SSEPT
    config: dict[str, Any]
    id_maps: IdMaps
    data_manifest: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def model_version(self) -> str:
        return str(self.config.get("model_version", ""))


def weights_sha256(path: Path) -> str:
    """sha256 of a model folder's weights (the engine manifest's ``model_sha256``)."""
    return hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_model(
    out_dir: Path,
    model: SSEPT,
    *,
    id_maps: IdMaps,
    data_manifest: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    model_version: str = "local",
) -> Path:
    """Write the model folder atomically (replacing an existing one) and return its path."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "format_version": 1,
        "model_version": model_version,
        **model.shape.to_dict(),
        "architecture": "sse-pt" if model.shape.user_dim > 0 else "sasrec",
        "hyperparameters": hyperparameters or {},
    }
    with staged_folder(out_dir, "writing") as staging:
        _write_json(staging / CONFIG_FILE, config)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS_FILE)
        _write_json(staging / ID_MAPS_FILE, id_maps.to_json())
        _write_json(staging / MANIFEST_FILE, data_manifest)
        _write_json(staging / METRICS_FILE, metrics or {})
    return out_dir


def read_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((Path(path) / CONFIG_FILE).read_text())
    return config


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    names = ModelShape.__dataclass_fields__
    return ModelShape(**{k: config[k] for k in names if k in config})


def load_model(path: Path) -> LoadedModel:
    """Read a model folder; the network comes back on CPU in ``eval()`` mode."""
    path = Path(path)
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a complete model folder: missing {', '.join(missing)}"
        )
    config = read_config(path)
    model = SSEPT(shape_from_config(config))
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return LoadedModel(
        model=model,
        config=config,
        id_maps=IdMaps.from_json(json.loads((path / ID_MAPS_FILE).read_text())),
        data_manifest=json.loads((path / MANIFEST_FILE).read_text()),
        metrics=json.loads((path / METRICS_FILE).read_text()),
    )
