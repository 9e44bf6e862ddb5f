"""The training blocks of the RecModel and TrainingRun specs, which are also the sections of
the trainer's config file: the operator renders them into a training Job, the trainer parses
them back. Defaults are the SSE-PT paper's ML-1M configuration.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from recops_contracts.wire import DnsName, Quantity, WireModel


class DatasetFormat(StrEnum):
    MOVIELENS_100K = "movielens-100k"
    MOVIELENS_1M = "movielens-1m"
    MOVIELENS_10M = "movielens-10m"
    MOVIELENS_20M = "movielens-20m"
    MOVIELENS_25M = "movielens-25m"
    MOVIELENS_32M = "movielens-32m"
    MOVIELENS_LATEST = "movielens-latest"
    # ml-20mx16x32: 16 train and 16 test npz shards of [user, item] pairs, no timestamps.
    MOVIELENS_1B = "movielens-1b"
    SASREC = "sasrec"
    SYNTHETIC = "synthetic"


# Formats large enough that training reads a prepared per-user Parquet snapshot through
# Ray Data (one shard per worker) rather than one process's memory.
SCALE_FORMATS = frozenset(
    {DatasetFormat.MOVIELENS_20M, DatasetFormat.MOVIELENS_25M, DatasetFormat.MOVIELENS_1B}
)


class DataPipeline(StrEnum):
    """How training reads the data."""

    AUTO = "auto"
    IN_MEMORY = "in-memory"
    STREAMING = "streaming"


class DatasetSource(WireModel):
    """Where the interactions come from and how they are filtered."""

    format: DatasetFormat = Field(
        description="Format of the source: a GroupLens MovieLens archive, a SASRec/SSE-PT "
        "`user item` sequence file, or the synthetic generator (tests and demos only)."
    )
    uri: str | None = Field(
        default=None,
        max_length=2048,
        description="Location of the file or archive: a local path, file:// or http(s):// "
        "(downloaded once into the cache). Empty means the GroupLens download for MovieLens "
        "formats.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Expected sha256 of the file at `uri`; a mismatch fails the run.",
    )
    min_interactions: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="k-core filter: users and items with fewer are removed.",
    )
    include_feedback: bool = Field(
        default=True,
        description="Append the serving feedback found in feedbackLog (clicks, watches, "
        "ratings) to the interactions.",
    )
    feedback_log: str | None = Field(
        default=None,
        max_length=2048,
        description="Folder (in the training pod) holding `recops serve --feedback-log` "
        "folders; their sealed segments are read when includeFeedback is on. Empty: none.",
    )
    pipeline: DataPipeline = Field(
        default=DataPipeline.AUTO,
        description="How movielens-20m, -25m and -1b train (the other formats always "
        "train in memory): in-memory (one process holds every sequence), streaming (each Ray "
        "Train worker streams its shard of the prepared per-user Parquet rows with Ray Data, "
        "in memory bounded by the block size), or auto: streaming above 20 million "
        "interactions, in-memory below.",
    )
    prepared_dir: str | None = Field(
        default=None,
        max_length=2048,
        description="Folder of the prepared per-user Parquet snapshot of movielens-20m, -25m "
        "and -1b: prepared there once, and reused while the archive (name, size, modification "
        "time) and minInteractions are unchanged. On a multi-node Ray cluster it must be "
        "shared storage that every worker reads (see preparedClaim).",
    )
    prepared_claim: DnsName | None = Field(
        default=None,
        description="A ReadWriteMany PersistentVolumeClaim mounted in the Ray head and every "
        "worker; the prepared snapshot lives on it (preparedDir defaults to a folder there).",
    )


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


class ModelHyperparameters(WireModel):
    """SSE-PT hyperparameters (the paper's ML-1M configuration is the default)."""

    architecture: Architecture = Field(
        default=Architecture.SSE_PT,
        description="sse-pt, or sasrec (the same network without user embeddings and SSE).",
    )
    maxlen: int = Field(default=200, ge=2, le=2048, description="History length in items.")
    item_dim: int = Field(default=50, ge=4, le=1024, description="Item embedding width.")
    user_dim: int = Field(
        default=50, ge=0, le=1024, description="User embedding width (0 for sasrec)."
    )
    num_blocks: int = Field(default=2, ge=1, le=12, description="Self-attention blocks.")
    num_heads: int = Field(default=1, ge=1, le=16, description="Attention heads per block.")
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="Dropout rate.")
    sse_user_prob: float = Field(
        default=0.92,
        ge=0.0,
        le=1.0,
        description="Stochastic Shared Embeddings: probability of replacing the user id in "
        "training (the reference's 1 - threshold_user; 0.92 on ML-1M).",
    )
    sse_item_prob: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Stochastic Shared Embeddings: probability of replacing a history item id "
        "in training (the reference's 1 - threshold_item; 0.1 on ML-1M).",
    )
    learning_rate: float = Field(default=0.001, gt=0.0, le=1.0, description="Adam learning rate.")
    batch_size: int = Field(default=128, ge=1, le=65536, description="Users per training batch.")
    epochs: int = Field(default=200, ge=1, le=100000, description="Maximum training epochs.")
    loss: LossName = Field(
        default=LossName.BCE,
        description="Training loss: bce (the paper's, one negative), gbce, sampled-softmax "
        "(both with `negatives`), or softmax (cross-entropy over the whole catalogue, no "
        "sampled negatives).",
    )
    negatives: int = Field(
        default=1,
        ge=1,
        le=10000,
        description="Sampled negatives per position (1 for bce; unused by softmax).",
    )
    seed: int = Field(default=42, ge=0, description="Random seed.")

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
        # Checked when the spec is applied, not when the training Job starts.
        width = self.item_dim + self.effective_user_dim
        if width % self.num_heads:
            raise ValueError(
                f"numHeads ({self.num_heads}) must divide the model width, itemDim + userDim "
                f"({width}): choose a divisor, or change the widths"
            )
        return self


class TrainingResources(WireModel):
    """Ray resources for training."""

    workers: int = Field(default=1, ge=1, le=512, description="Ray Train workers.")
    cpus_per_worker: int = Field(default=2, ge=1, le=256, description="CPUs per worker.")
    gpus_per_worker: int = Field(default=0, ge=0, le=16, description="GPUs per worker.")
    memory: Quantity = Field(default="4Gi", description="Memory per worker pod.")
    image: str | None = Field(
        default=None, max_length=512, description="Trainer image; the chart's default when empty."
    )
    checkpoint_every: int = Field(default=5, ge=1, description="Checkpoint every N epochs.")
    storage_path: str | None = Field(
        default=None,
        max_length=2048,
        description="Checkpoint storage (local path or a URI pyarrow accepts, e.g. s3://).",
    )
    storage_claim: DnsName | None = Field(
        default=None,
        description="A ReadWriteMany PersistentVolumeClaim mounted at the same path in the "
        "training pods (the Ray head and every worker) and the compile Jobs: the run's data "
        "snapshot, its Ray checkpoints (unless storagePath names a URI) and outputs live on "
        "it. Required when training runs on KubeRay, where the Ray Train workers run in other "
        "pods than the driver.",
    )


class GateMetric(StrEnum):
    """A test metric a new version must reach; each is better when higher."""

    NDCG_10 = "ndcg@10"
    HR_10 = "hr@10"
    NDCG_20 = "ndcg@20"
    HR_20 = "hr@20"
    MRR = "mrr"
    # Beyond accuracy (full protocol): the share of the catalogue the lists reach, and
    # NDCG@10 of users with at most 5 interactions.
    COVERAGE_10 = "coverage@10"
    SHORT_HISTORY_NDCG_10 = "short_history_ndcg@10"


class EvaluationProtocol(StrEnum):
    SAMPLED = "sampled"
    FULL = "full"


class OfflineGate(WireModel):
    """What a newly trained version must reach to become the candidate."""

    metric: GateMetric = Field(
        default=GateMetric.NDCG_10,
        description="Gating metric (coverage@10 needs protocol full).",
    )
    protocol: EvaluationProtocol = Field(
        default=EvaluationProtocol.SAMPLED,
        description="sampled (100 negatives, the paper's protocol) or full ranking.",
    )
    minimum: float = Field(default=0.0, ge=0.0, le=1.0, description="Minimum absolute value.")
    margin_over_champion: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="Required improvement over the version holding the champion alias, "
        "when both were measured on the same data set snapshot (a retraining on new feedback "
        "has a new test split: then only minimum applies, and the canary compares them live).",
    )

    @model_validator(mode="after")
    def _coverage_is_full_ranking(self) -> OfflineGate:
        if self.metric == GateMetric.COVERAGE_10 and self.protocol != EvaluationProtocol.FULL:
            raise ValueError(
                "metric: coverage@10 is measured on full ranking only; set protocol: full"
            )
        return self


class MlflowSettings(WireModel):
    """Where runs and models are tracked."""

    tracking_uri: str | None = Field(
        default=None,
        max_length=2048,
        description="MLflow tracking URI; the chart default when empty.",
    )
    secret_ref: DnsName | None = Field(
        default=None, description="Secret with MLFLOW_* environment variables (credentials)."
    )
    registered_model_name: str | None = Field(
        default=None, max_length=256, description="Registry name; the RecModel's name when empty."
    )


class SearchDimension(WireModel):
    """One hyperparameter's search range."""

    distribution: Literal["choice", "uniform", "loguniform", "randint"] = Field(
        description="How values are drawn."
    )
    values: list[float] | None = Field(default=None, description="Candidates for choice.")
    low: float | None = Field(default=None, description="Lower bound for ranges.")
    high: float | None = Field(default=None, description="Upper bound for ranges.")

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.distribution == "choice":
            if not self.values:
                raise ValueError("values: a choice needs at least one value")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"low/high: {self.distribution} needs low < high")
        return self


class TuneSpec(WireModel):
    """Ray Tune search with ASHA."""

    num_samples: int = Field(default=8, ge=1, le=10000, description="Trials to run.")
    max_concurrent: int | None = Field(default=None, ge=1, description="Trials run at once.")
    metric: str = Field(default="ndcg@10", description="Validation metric to maximise.")
    search_space: dict[str, SearchDimension] = Field(
        min_length=1,
        description="Hyperparameter (camelCase name from spec.model) to its range.",
    )

    @model_validator(mode="after")
    def _known_parameters(self) -> TuneSpec:
        names = {f.alias or n for n, f in ModelHyperparameters.model_fields.items()}
        unknown = sorted(set(self.search_space) - names)
        if unknown:
            raise ValueError(
                f"searchSpace: unknown hyperparameters {', '.join(unknown)}; use camelCase "
                f"names of spec.model ({', '.join(sorted(names))})"
            )
        return self


class TrainingJobConfig(WireModel):
    """The top-level keys of the file given to ``recops train --config`` and ``recops tune
    --config``: the operator writes them into a training Job's ConfigMap; the trainer's
    config reads them, beside its own loop settings."""

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
