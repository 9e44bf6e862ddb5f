"""The shared contracts: one definition each, used by every side."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import BaseModel, ValidationError

from recops_contracts import feedback, metrics, tracking, training
from recops_contracts.wire import describe_errors, dotted

SHARED_BLOCKS = (
    "DatasetFormat",
    "DatasetSource",
    "Architecture",
    "LossName",
    "ModelHyperparameters",
    "TrainingResources",
    "GateMetric",
    "EvaluationProtocol",
    "OfflineGate",
    "MlflowSettings",
    "SearchDimension",
    "TuneSpec",
)


def _classes_of(*models: type[BaseModel]) -> dict[str, type]:
    """Every class the models' fields are typed with, by name, through nested models."""
    found: dict[str, type] = {}
    todo: list[object] = [f.annotation for model in models for f in model.model_fields.values()]
    while todo:
        kind = todo.pop()
        todo.extend(typing.get_args(kind))
        if isinstance(kind, type) and kind.__name__ not in found:
            found[kind.__name__] = kind
            if issubclass(kind, BaseModel):
                todo.extend(f.annotation for f in kind.model_fields.values())
    return found


@pytest.mark.parametrize("name", SHARED_BLOCKS)
def test_the_operator_and_the_trainer_use_the_same_block(name: str) -> None:
    """Not equal copies: the same object, so a changed default, bound or enum value
    cannot reach one side only."""
    from recops_operator.api.recmodel import RecModelSpec
    from recops_operator.api.trainingrun import TrainingRunSpec
    from recops_trainer.config import TrainConfig

    shared = getattr(training, name)
    # The operator imports the blocks from the contracts only: the classes its CR specs
    # are made of are the shared ones.
    operator_side = _classes_of(RecModelSpec, TrainingRunSpec).get(name)
    assert operator_side is shared
    # And the trainer's config file is made of the same objects.
    assert _classes_of(TrainConfig).get(name) is shared


def test_the_crd_schema_keeps_the_blocks_descriptions() -> None:
    from recops_operator.api.recmodel import RecModelSpec
    from recops_operator.crdgen import openapi_schema

    model = openapi_schema(RecModelSpec)["properties"]["model"]["properties"]
    assert model["dropout"]["description"] == "Dropout rate."
    assert model["loss"]["enum"] == [loss.value for loss in training.LossName]


def test_metric_keys() -> None:
    key = tracking.metric_key
    assert key("test", training.EvaluationProtocol.SAMPLED, "ndcg@10") == "test_sampled_ndcg_at_10"
    assert key("test", "full", "hr@10") == "test_full_hr_at_10"
    assert key("val", "sampled", "ndcg@10") == "val_ndcg_at_10"
    assert key("val", "full", "ndcg@10") == "val_full_ndcg_at_10"
    with pytest.raises(ValueError, match="partial"):
        key("test", "partial", "mrr")
    assert "test_full_ndcg_at_10" in tracking.METRICS


def test_the_trainer_logs_the_names_the_operator_reads() -> None:
    from recops_trainer.evaluation.evaluator import flat_metrics
    from recops_trainer.tracking.registry import gate_metric_key

    flat = flat_metrics({"sampled": {"ndcg@10": 0.5, "users": 3}, "full": {"hr@10": 0.2}}, "test")
    assert flat == {"test_sampled_ndcg_at_10": 0.5, "test_full_hr_at_10": 0.2}
    gate = training.OfflineGate(protocol=training.EvaluationProtocol.FULL)
    assert gate_metric_key(gate) == "test_full_ndcg_at_10" in tracking.METRICS


def test_exposed_counter_names() -> None:
    from recops_operator.queries import runtime_metrics

    assert runtime_metrics.REQUESTS == "recops_requests_total" == metrics.total(metrics.REQUESTS)
    assert runtime_metrics.LATENCY == metrics.LATENCY


def _feedback(**change: object) -> dict[str, object]:
    record = {
        "kind": "feedback",
        "ts": 1.7e9,
        "request_id": "r1",
        "user_id": "u1",
        "version": "stable",
        "item_id": "7",
        "event": "click",
        "value": 0.0,
        "recommended": True,
    }
    return record | change


def test_feedback_records_parse_by_kind() -> None:
    record = feedback.parse_record(json.dumps(_feedback()))
    assert record["kind"] == "feedback" and record["event"] == "click"
    served = feedback.parse_record(
        json.dumps(
            {
                "kind": "recommendation",
                "ts": 1.7e9,
                "request_id": "r1",
                "user_id": "u1",
                "version": "stable",
                "target": "cpu-onnxruntime",
                "model_version": "3",
                "items": ["7", "8"],
                "fallback": None,
                "history_source": "store",
            }
        )
    )
    assert served["kind"] == "recommendation" and served["items"] == ["7", "8"]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (_feedback(event="like"), "feedback.event"),
        (_feedback(item_id=None), "feedback.item_id"),
        ({"kind": "purchase", "ts": 1}, "(root): Input tag 'purchase' found using 'kind'"),
        ({k: v for k, v in _feedback().items() if k != "ts"}, "feedback.ts"),
    ],
)
def test_a_bad_record_names_its_field(record: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        feedback.parse_record(json.dumps(record))
    assert describe_errors(caught.value).startswith(field)


def test_error_descriptions_name_the_field_and_the_fix() -> None:
    with pytest.raises(ValidationError) as caught:
        training.ModelHyperparameters.model_validate({"dropout": 2, "itemDim": 50, "hiddenDim": 3})
    text = describe_errors(caught.value, dotted("spec.model"), unknown_field="no such field")
    assert "spec.model.dropout: Input should be less than 1" in text
    assert "spec.model.hiddenDim: no such field" in text
    with pytest.raises(ValidationError) as caught:
        training.TuneSpec.model_validate({"searchSpace": {"dropout": {"distribution": "uniform"}}})
    assert describe_errors(caught.value).startswith("searchSpace.dropout: low/high")
    assert dotted("spec")((0, "name")) == "spec[0].name"
    assert dotted()(()) == "(root)"


def test_a_coverage_gate_needs_full_ranking() -> None:
    with pytest.raises(ValidationError, match="coverage@10 is measured on full ranking only"):
        training.OfflineGate.model_validate({"metric": "coverage@10"})
    gate = training.OfflineGate.model_validate({"metric": "coverage@10", "protocol": "full"})
    assert (
        tracking.metric_key("test", gate.protocol, gate.metric.value) == "test_full_coverage_at_10"
    )
