"""The training config file: camelCase JSON or YAML, the same fields as the CR API.

The operator renders this file from a TrainingRun; the trainer cannot import the operator,
so it keeps its own models with the same names and defaults (a test parses the operator's
rendering with them).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_default=True
    )


class DatasetFormat(StrEnum):
    MOVIELENS_100K = "movielens-100k"
    MOVIELENS_1M = "movielens-1m"
    MOVIELENS_10M = "movielens-10m"
    MOVIELENS_20M = "movielens-20m"
    MOVIELENS_25M = "movielens-25m"
    MOVIELENS_32M = "movielens-32m"
    MOVIELENS_LATEST = "movielens-latest"
    SASREC = "sasrec"
    SYNTHETIC = "synthetic"


class DatasetSource(_Camel):
    format: DatasetFormat
    uri: str | None = Field(default=None, max_length=2048)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    min_interactions: int = Field(default=5, ge=1, le=1000)
    include_feedback: bool = True
    feedback_log: str | None = Field(default=None, max_length=2048)


class Architecture(StrEnum):
    SSE_PT = "sse-pt"
    SASREC = "sasrec"


class LossName(StrEnum):
    BCE = "bce"
    GBCE = "gbce"
    SAMPLED_SOFTMAX = "sampled-softmax"
    SOFTMAX = "softmax"

    @property
    def samples_negatives(self) -> bool:
        """Whether training batches need sampled negatives (the full softmax needs none)."""
        return self != LossName.SOFTMAX


class ModelHyperparameters(_Camel):
    """SSE-PT hyperparameters; the defaults are the paper's ML-1M configuration."""

    architecture: Architecture = Architecture.SSE_PT
    maxlen: int = Field(default=200, ge=2, le=2048)
    item_dim: int = Field(default=50, ge=4, le=1024)
    user_dim: int = Field(default=50, ge=0, le=1024)
    num_blocks: int = Field(default=2, ge=1, le=12)
    num_heads: int = Field(default=1, ge=1, le=16)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    sse_user_prob: float = Field(default=0.92, ge=0.0, le=1.0)
    sse_item_prob: float = Field(default=0.1, ge=0.0, le=1.0)
    learning_rate: float = Field(default=0.001, gt=0.0, le=1.0)
    batch_size: int = Field(default=128, ge=1, le=65536)
    epochs: int = Field(default=200, ge=1, le=100000)
    loss: LossName = LossName.BCE
    negatives: int = Field(default=1, ge=1, le=10000)
    seed: int = Field(default=42, ge=0)

    @property
    def effective_user_dim(self) -> int:
        """SASRec has no user embedding, whatever userDim says."""
        return 0 if self.architecture == Architecture.SASREC else self.user_dim

    @property
    def effective_sse(self) -> tuple[float, float]:
        """(user, item) replacement probabilities; SASRec uses none."""
        if self.architecture == Architecture.SASREC:
            return 0.0, 0.0
        return self.sse_user_prob, self.sse_item_prob

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelHyperparameters:
        width = self.item_dim + self.effective_user_dim
        if width % self.num_heads:
            raise ValueError(f"numHeads ({self.num_heads}) must divide itemDim + userDim ({width})")
        return self


class TrainingResources(_Camel):
    workers: int = Field(default=1, ge=1, le=512)
    cpus_per_worker: int = Field(default=2, ge=1, le=256)
    gpus_per_worker: int = Field(default=0, ge=0, le=16)
    memory: str = "4Gi"
    image: str | None = None
    checkpoint_every: int = Field(default=5, ge=1)
    storage_path: str | None = Field(default=None, max_length=2048)


class GateMetric(StrEnum):
    NDCG_10 = "ndcg@10"
    HR_10 = "hr@10"
    NDCG_20 = "ndcg@20"
    HR_20 = "hr@20"
    MRR = "mrr"


class EvaluationProtocol(StrEnum):
    SAMPLED = "sampled"
    FULL = "full"


class OfflineGate(_Camel):
    metric: GateMetric = GateMetric.NDCG_10
    protocol: EvaluationProtocol = EvaluationProtocol.SAMPLED
    minimum: float = Field(default=0.0, ge=0.0, le=1.0)
    margin_over_champion: float = Field(default=0.0, ge=-1.0, le=1.0)


class MlflowSettings(_Camel):
    tracking_uri: str | None = Field(default=None, max_length=2048)
    secret_ref: str | None = None
    registered_model_name: str | None = Field(default=None, max_length=256)


class SearchDimension(_Camel):
    distribution: Literal["choice", "uniform", "loguniform", "randint"]
    values: list[float] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.distribution == "choice":
            if not self.values:
                raise ValueError("values: a choice needs at least one value")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"low/high: {self.distribution} needs low < high")
        return self


class TuneSpec(_Camel):
    num_samples: int = Field(default=8, ge=1, le=10000)
    max_concurrent: int | None = Field(default=None, ge=1)
    metric: str = "ndcg@10"
    search_space: dict[str, SearchDimension] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_parameters(self) -> TuneSpec:
        fields = {f.alias or name for name, f in ModelHyperparameters.model_fields.items()}
        unknown = sorted(set(self.search_space) - fields)
        if unknown:
            raise ValueError(
                f"searchSpace: unknown hyperparameters {', '.join(unknown)}; "
                f"use camelCase names of spec.model ({', '.join(sorted(fields))})"
            )
        return self


class TrainingSettings(_Camel):
    """Knobs of the loop that the CR API leaves at their defaults."""

    eval_every: int = Field(default=20, ge=1, description="Validate every N epochs.")
    patience: int = Field(
        default=3, ge=1, description="Stop after N validations without improvement."
    )
    eval_users: int = Field(
        default=10000, ge=1, description="Validate on at most N users (the reference's cap)."
    )
    threads: int | None = Field(default=None, ge=1, description="torch threads per process.")
    time_limit_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Stop after the epoch that crosses this wall time (validating it).",
    )


class TrainConfig(_Camel):
    """The whole file given to ``recops train --config`` and ``recops tune --config``."""

    dataset: DatasetSource
    model: ModelHyperparameters = Field(default_factory=ModelHyperparameters)
    resources: TrainingResources = Field(default_factory=TrainingResources)
    gate: OfflineGate = Field(default_factory=OfflineGate)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    tune: TuneSpec | None = None
    training_run: str | None = Field(default=None, description="<namespace>/<name>.")
    output: str | None = Field(default=None, description="Folder for the run's outputs.")
    feedback_volume: str | None = Field(
        default=None,
        description="The RecModel's folder on the operator's feedback volume, where its "
        "serving pods log feedback: read when dataset.includeFeedback is on and "
        "dataset.feedbackLog is empty; absent until a serving pod has started.",
    )
    training: TrainingSettings = Field(default_factory=TrainingSettings)


class ConfigError(ValueError):
    """A config file that cannot work, with the field and the fix."""


def parse_config(data: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
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
