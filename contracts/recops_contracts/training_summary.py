"""What `recops train` prints when it ends: one JSON object, the last on its stdout.

The trainer writes it; the quickstart reads the model folder, the registered version and
the gate's verdict from it (a TrainingRun's job leaves the same facts in MLflow, where the
operator reads them). snake_case, as it has always been printed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from recops_contracts.tracking import Verdict
from recops_contracts.training import EvaluationProtocol

# Absent from the JSON when unset: the pipeline (only the large formats choose one) and
# the registry's fields (`recops train --no-track` registers nothing).
_ABSENT_WHEN_NONE = (
    "pipeline",
    "mlflow_run_id",
    "tracking_uri",
    "registered_model",
    "model_version",
    "gate",
)


class GateOutcome(BaseModel):
    """The offline gate's verdict on the registered version, and why."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    reason: str


class PipelineChoice(BaseModel):
    """How a large data set was trained: in memory or streamed, and why."""

    model_config = ConfigDict(extra="forbid")

    chosen: str
    reason: str


class TrainingSummary(BaseModel):
    """One `recops train` run: where its outputs are, what it measured, what it registered."""

    model_config = ConfigDict(extra="forbid")

    output: str
    model_dir: str
    dataset_hash: str
    synthetic: bool
    epochs: int
    best_epoch: int
    seconds: float
    # Per protocol (``sampled``, ``full``), the test split's metrics as the evaluator
    # reports them (``ndcg@10``, ``hr@10``, counts and per-group breakdowns).
    test: dict[str, dict[str, Any]]
    pipeline: PipelineChoice | None = None
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    registered_model: str | None = None
    model_version: str | None = None
    gate: GateOutcome | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The object as printed: the optional fields only when set."""
        return self.model_dump(exclude={k for k in _ABSENT_WHEN_NONE if getattr(self, k) is None})

    def test_metric(self, protocol: EvaluationProtocol, name: str) -> float | None:
        """One test metric under ``protocol`` (``ndcg@10``, ``hr@10``...), if measured."""
        value = self.test.get(protocol.value, {}).get(name)
        return float(value) if isinstance(value, int | float) else None
