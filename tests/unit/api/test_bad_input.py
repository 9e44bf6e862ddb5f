"""Malformed resources are refused by the CRD schema and by the models, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from recops_operator.api.recmodel import RecModel, RecModelSpec
from recops_operator.api.rollout import Rollout, RolloutSpec
from recops_operator.api.trainingrun import TrainingRun, TrainingRunSpec
from recops_operator.validation import InvalidSpecError, parse_spec
from recops_testkit.schemas import object_errors, validate_object

MODELS: dict[str, type[BaseModel]] = {
    "RecModel": RecModel,
    "TrainingRun": TrainingRun,
    "Rollout": Rollout,
}
# What the controllers parse, and whose message users read in the InvalidSpec condition.
SPECS: dict[str, type[BaseModel]] = {
    "RecModel": RecModelSpec,
    "TrainingRun": TrainingRunSpec,
    "Rollout": RolloutSpec,
}


def _example(repo_root: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (repo_root / "examples" / "movielens" / name).read_text(encoding="utf-8")
    )
    return loaded


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``doc`` with ``a.b.0.c`` set (or deleted when value is ...)."""
    out = copy.deepcopy(doc)
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = out
    for part in parts[:-1]:
        node = node[part]
    if value is ...:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return out


# (example file, dotted path to change, new value or ... to delete, what the error must name)
CASES: list[tuple[str, str, Any, str]] = [
    ("recmodel.yaml", "spec.targets.0.replicas", -1, "targets[0].replicas"),
    ("recmodel.yaml", "spec.targets.0.name", "tpu-jax", "targets[0].name"),
    ("recmodel.yaml", "spec.model.maxlen", "long", "model.maxlen"),
    ("recmodel.yaml", "spec.model.dropout", 1.5, "model.dropout"),
    ("recmodel.yaml", "spec.modle", {"maxlen": 50}, "modle"),
    ("recmodel.yaml", "spec.dataset", ..., "dataset"),
    ("recmodel.yaml", "spec.dataset.format", "netflix", "dataset.format"),
    ("recmodel.yaml", "spec.dataset.sha256", "not-a-hash", "dataset.sha256"),
    ("recmodel.yaml", "spec.targets", [], "targets"),
    ("recmodel.yaml", "spec.targets.1.name", "cpu-onnxruntime", "targets"),
    ("recmodel.yaml", "spec.targets.1.name", "gpu-tensorrt", "gpu"),
    ("recmodel.yaml", "spec.targets.0.autoscaling.minReplicas", 9, "minReplicas"),
    ("recmodel.yaml", "spec.gate.minimum", 2, "gate.minimum"),
    ("recmodel.yaml", "spec.retraining.schedule", "every monday", "retraining.schedule"),
    ("rollout.yaml", "spec.policy.steps.0.setWeight", 150, "steps[0].setWeight"),
    ("rollout.yaml", "spec.policy.steps.2.setWeight", -5, "steps[2].setWeight"),
    ("rollout.yaml", "spec.policy.steps.4.setWeight", 10, "steps"),
    ("rollout.yaml", "spec.candidateVersion", ..., "candidateVersion"),
    ("rollout.yaml", "spec.policy.steps.0.pause", {"duration": "1m"}, "steps[0]"),
    ("rollout.yaml", "spec.policy.metrics.0.prometheus", {"query": "up"}, "metrics[0]"),
    ("rollout.yaml", "spec.policy.analysisInterval", "5 minutes", "analysisInterval"),
    ("rollout.yaml", "spec.policy.metrics.1.successCondition", "==", "successCondition"),
    ("rollout.yaml", "spec.recModel", "Movies_Model", "recModel"),
    ("trainingrun.yaml", "spec.tune", ..., "tune"),
    ("trainingrun.yaml", "spec.backoffLimit", "three", "backoffLimit"),
    ("trainingrun.yaml", "spec.mode", "finetune", "mode"),
    ("trainingrun.yaml", "spec.resources.workers", 0, "resources.workers"),
]


@pytest.mark.parametrize(("example", "path", "value", "names"), CASES)
def test_crd_schema_refuses(
    repo_root: Path,
    example: str,
    path: str,
    value: Any,
    names: str,
) -> None:
    doc = _set(_example(repo_root, example), path, value)
    errors = object_errors(doc)
    assert errors, f"the CRD schema accepted {path}={value!r}"
    assert any(names in e for e in errors), errors


@pytest.mark.parametrize(("example", "path", "value", "names"), CASES)
def test_models_refuse(repo_root: Path, example: str, path: str, value: Any, names: str) -> None:
    """The operator's own parse refuses the spec, and its message (the InvalidSpec
    condition's, as users read it) names the field from ``spec.``."""
    doc = _set(_example(repo_root, example), path, value)
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(SPECS[doc["kind"]], doc.get("spec"))
    message = str(caught.value)
    assert message.startswith("spec") and names in message, message
    if path.endswith(".modle"):
        assert "unknown field" in message, message


# Checks only the models make (the operator reports them as InvalidSpec before any Job runs).
MODEL_CASES: list[tuple[str, str, Any, str]] = [
    ("recmodel.yaml", "spec.model.numHeads", 3, "numHeads (3) must divide"),
    (
        "trainingrun.yaml",
        "spec.tune.searchSpace.learningrate",
        {"distribution": "choice", "values": [0.1]},
        "unknown hyperparameters learningrate",
    ),
]


@pytest.mark.parametrize(("example", "path", "value", "names"), MODEL_CASES)
def test_models_refuse_what_the_trainer_would(
    repo_root: Path, example: str, path: str, value: Any, names: str
) -> None:
    test_models_refuse(repo_root, example, path, value, names)


@pytest.mark.parametrize("example", ["recmodel.yaml", "trainingrun.yaml", "rollout.yaml"])
def test_valid_examples_pass_both(repo_root: Path, example: str) -> None:
    doc = _example(repo_root, example)
    validate_object(doc)
    parsed = MODELS[doc["kind"]].model_validate(doc)
    # Round trip: the model writes back exactly what the user wrote.
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == doc
