"""What the quickstart trains, serves and rolls out: two sizes, one shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

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
) -> dict[str, Any]:
    """A `recops train` config (the camelCase contract the operator renders too); with
    ``feedback_log``, the serving feedback joins the data, as a TrainingRun's does."""
    dataset: dict[str, Any] = {
        "format": "movielens-100k",
        "uri": str(data_file),
        "minInteractions": 5,
    }
    if feedback_log is not None:
        dataset |= {"includeFeedback": True, "feedbackLog": str(feedback_log)}
    return {
        "dataset": dataset,
        "model": {
            "architecture": "sse-pt",
            "maxlen": size.maxlen,
            "itemDim": 32,
            "userDim": 16,
            "numBlocks": 2,
            "numHeads": 1,
            "dropout": 0.2,
            "sseUserProb": 0.5,
            "sseItemProb": 0.05,
            "learningRate": 0.002,
            "batchSize": 128,
            "epochs": epochs,
            "seed": 7,
        },
        "resources": {"workers": 1, "cpusPerWorker": 1, "checkpointEvery": 5},
        # The first version has no champion to beat; the second must beat the first.
        "gate": {"metric": "ndcg@10", "protocol": "sampled", "marginOverChampion": 0.005},
        "mlflow": {
            "trackingUri": f"sqlite:///{(workdir / 'mlflow.db').resolve()}",
            "registeredModelName": REGISTERED_MODEL,
        },
        "output": str(workdir / "train" / version_label),
    }


def rollout_policy(size: Size) -> dict[str, Any]:
    """Canary steps and analysis sized for a laptop's simulated traffic."""
    return {
        "steps": [
            {"setWeight": 25},
            {"analysis": {"count": 2}},
            {"setWeight": 50},
            {"analysis": {"count": 2}},
            {"setWeight": 100},
        ],
        "analysisInterval": size.analysis_interval,
        "scaleDownDelaySeconds": 0,
        "metrics": [
            {
                "name": "error-rate",
                "builtin": "error-rate",
                "successCondition": "<=",
                "threshold": 0.01,
                "minSampleSize": 50,
            },
            {
                "name": "latency-p99",
                "builtin": "latency-p99",
                "successCondition": "<=",
                "threshold": 0.25,
                "minSampleSize": 50,
            },
            {
                "name": "hit-rate",
                "builtin": "hit-rate-vs-stable",
                "successCondition": ">=",
                "threshold": -0.03,
                "minSampleSize": size.min_samples,
                "inconclusiveLimit": 6,
            },
        ],
    }
