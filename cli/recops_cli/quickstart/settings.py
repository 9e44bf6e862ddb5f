"""What the quickstart trains, serves and rolls out: two sizes, one shape."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from recops_contracts.training import (
    Architecture,
    DatasetFormat,
    DatasetSource,
    EvaluationProtocol,
    GateMetric,
    MlflowSettings,
    ModelHyperparameters,
    OfflineGate,
    TrainingResources,
)
from recops_operator.api.rollout_policy import (
    AnalysisMetric,
    AnalysisStep,
    BuiltinMetric,
    CanaryStep,
    Comparison,
    RolloutPolicy,
)
from recops_trainer.config import TrainConfig

REGISTERED_MODEL = "quickstart-movies"
SERVING_TARGET = "cpu-onnxruntime"
# Every CPU engine is compiled and checked; the first one serves.
ENGINE_TARGETS = ("cpu-onnxruntime", "cpu-openvino")


class Size(BaseModel):
    """Knobs that trade wall time for quality; `small` is the end-to-end test's size."""

    maxlen: int
    v1_epochs: int
    v2_epochs: int
    traffic_rate: float = Field(description="Simulated requests per second during serving.")
    analysis_interval: str
    min_samples: int = Field(
        description="Recommendations per version and analysis interval before hit rate counts; "
        "at the first step's 25% this needs rate x interval x 0.25 above it."
    )
    latency_seconds: float = Field(description="Latency measurement per batch size at compile.")
    drift_window: int = Field(description="Requests per drift window (--loop).")
    drift_consecutive: int = Field(description="Breaching windows in a row that trigger.")


SIZES: dict[str, Size] = {
    "default": Size(
        maxlen=50,
        v1_epochs=2,
        v2_epochs=25,
        traffic_rate=150.0,
        analysis_interval="10s",
        min_samples=300,
        latency_seconds=1.0,
        drift_window=600,
        drift_consecutive=3,
    ),
    "small": Size(
        maxlen=30,
        v1_epochs=1,
        v2_epochs=8,
        traffic_rate=100.0,
        analysis_interval="6s",
        min_samples=120,
        latency_seconds=0.3,
        drift_window=400,
        drift_consecutive=3,
    ),
}


def train_config(
    *,
    version_label: str,
    data_file: Path,
    epochs: int,
    size: Size,
    workdir: Path,
    feedback_log: Path | None = None,
) -> TrainConfig:
    """A `recops train` config (the contract the operator renders too); with
    ``feedback_log``, the serving feedback joins the data, as a TrainingRun's does.

    Only the fields set here are written (``exclude_unset``): the trainer's defaults
    stay the trainer's."""
    feedback = {"include_feedback": True, "feedback_log": str(feedback_log)} if feedback_log else {}
    return TrainConfig(
        dataset=DatasetSource(
            format=DatasetFormat.MOVIELENS_100K, uri=str(data_file), min_interactions=5, **feedback
        ),
        model=ModelHyperparameters(
            architecture=Architecture.SSE_PT,
            maxlen=size.maxlen,
            item_dim=32,
            user_dim=16,
            num_blocks=2,
            num_heads=1,
            dropout=0.2,
            sse_user_prob=0.5,
            sse_item_prob=0.05,
            learning_rate=0.002,
            batch_size=128,
            epochs=epochs,
            seed=7,
        ),
        resources=TrainingResources(workers=1, cpus_per_worker=1, checkpoint_every=5),
        # The first version has no champion to beat; the second must beat the first.
        gate=OfflineGate(
            metric=GateMetric.NDCG_10,
            protocol=EvaluationProtocol.SAMPLED,
            margin_over_champion=0.005,
        ),
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{(workdir / 'mlflow.db').resolve()}",
            registered_model_name=REGISTERED_MODEL,
        ),
        output=str(workdir / "train" / version_label),
    )


def _gate(
    name: str, builtin: BuiltinMetric, condition: Comparison, threshold: float
) -> AnalysisMetric:
    return AnalysisMetric(
        name=name,
        builtin=builtin,
        success_condition=condition,
        threshold=threshold,
        min_sample_size=50,
    )


def rollout_policy(size: Size) -> RolloutPolicy:
    """Canary steps and analysis sized for a laptop's simulated traffic."""
    analysis = CanaryStep(analysis=AnalysisStep(count=2))
    return RolloutPolicy(
        steps=[
            CanaryStep(set_weight=25),
            analysis,
            CanaryStep(set_weight=50),
            analysis,
            CanaryStep(set_weight=100),
        ],
        analysis_interval=size.analysis_interval,
        scale_down_delay_seconds=0,
        metrics=[
            _gate("error-rate", BuiltinMetric.ERROR_RATE, Comparison.LE, 0.01),
            _gate("latency-p99", BuiltinMetric.LATENCY_P99, Comparison.LE, 0.25),
            AnalysisMetric(
                name="hit-rate",
                builtin=BuiltinMetric.HIT_RATE_VS_STABLE,
                success_condition=Comparison.GE,
                threshold=-0.03,
                min_sample_size=size.min_samples,
                inconclusive_limit=6,
            ),
        ],
    )


def as_yaml(config: TrainConfig | RolloutPolicy) -> str:
    """The file `recops train --config` or `recops rollout --policy` reads: camelCase, the
    fields set here only."""
    data = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return yaml.safe_dump(data, sort_keys=False)
