"""The training config file: camelCase JSON or YAML, the same fields as the CR API.

The operator renders this file from a TrainingRun. Its dataset, model, resources, gate,
mlflow and tune sections are the spec's own blocks (``recops_contracts.training``); the
``training`` section holds the loop's knobs, which the CR API leaves at their defaults.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from recops_contracts.training import EvaluationProtocol, TrainingJobConfig
from recops_contracts.wire import WireModel, describe_errors


class Precision(StrEnum):
    """The arithmetic of the training passes."""

    FP32 = "fp32"
    # bfloat16 autocast: matrix products in bf16, the loss and the weights in fp32. Worth it
    # on a GPU; on the 2-core CPU of the trainer README it was no faster.
    BF16 = "bf16"


class TrainingSettings(WireModel):
    """Knobs of the loop that the CR API leaves at their defaults."""

    eval_every: int = Field(default=20, ge=1, description="Validate every N epochs.")
    patience: int = Field(
        default=3, ge=1, description="Stop after N validations without improvement."
    )
    eval_users: int = Field(
        default=10000, ge=1, description="Validate on at most N users (the reference's cap)."
    )
    lr_decays: int = Field(
        default=0,
        ge=0,
        description="At a plateau (patience validations without improvement), go back to the "
        "best model, multiply the learning rate by lrDecayFactor and go on, at most N times; "
        "the run stops at the plateau after that.",
    )
    lr_decay_factor: float = Field(
        default=0.3, gt=0, lt=1, description="The learning rate's factor at each lrDecays step."
    )
    threads: int | None = Field(default=None, ge=1, description="torch threads per process.")
    time_limit_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Stop after the epoch that crosses this wall time (validating it).",
    )
    monitor: EvaluationProtocol = Field(
        default=EvaluationProtocol.SAMPLED,
        description="The validation NDCG@10 that early stopping and model selection watch: "
        "sampled (100 negatives, the papers' protocol) or full (the whole catalogue).",
    )
    precision: Precision = Field(
        default=Precision.FP32,
        description="fp32, or bf16 (autocast of the forward pass; for GPUs).",
    )


class TrainConfig(TrainingJobConfig):
    """The whole file given to ``recops train --config`` and ``recops tune --config``: the
    contract's top-level keys, which the operator renders, and the loop's own settings."""

    training: TrainingSettings = Field(default_factory=TrainingSettings)


class ConfigError(ValueError):
    """A config file that cannot work, with the field and the fix."""


def parse_config(data: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc)
        raise ConfigError(f"invalid training config: {problems}") from exc


def load_config(path: Path) -> TrainConfig:
    """Read a JSON or YAML config file (YAML is a superset of JSON)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with at least a 'dataset' key")
    return parse_config(data)
