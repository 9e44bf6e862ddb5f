"""The Rollout controller's pure parts: GRPCRoute weights, manual controls, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from recops_operator.api.recmodel import DeploymentTarget
from recops_operator.api.rollout import RolloutSpec, Weights
from recops_operator.render.serving import render_grpc_route
from recops_operator.rollout.controls import controls_of
from recops_operator.rollout.traffic import route_weights
from recops_operator.settings import OperatorSettings

TARGETS = [
    DeploymentTarget.model_validate({"name": "cpu-onnxruntime"}),
    DeploymentTarget.model_validate({"name": "cpu-openvino"}),
]


def grpcroute_schema(folder: Path) -> dict[str, Any]:
    crd = yaml.safe_load((folder / "gateway.networking.k8s.io_grpcroutes.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return dict(version["schema"]["openAPIV3Schema"])


def route(weights: dict[str, int]) -> dict[str, Any]:
    return render_grpc_route("ml", "movies", TARGETS, weights, OperatorSettings(), None)


def test_weights_reach_every_rule_and_the_route_stays_valid(shared_crd_schemas: Path) -> None:
    before = route({"3": 100, "4": 0})
    plan = route_weights(
        before,
        "movies",
        [t.name.value for t in TARGETS],
        "3",
        "4",
        Weights(stable=90, candidate=10),
    )
    assert plan.changed and plan.missing_candidate == []
    for rule in plan.rules:
        assert {b["name"]: b["weight"] for b in rule["backendRefs"]} == {
            f"movies-3-{rule_target(rule)}": 90,
            f"movies-4-{rule_target(rule)}": 10,
        }
    after = {**before, "spec": {**before["spec"], "rules": plan.rules}}
    OAS30Validator(grpcroute_schema(shared_crd_schemas)).validate(after)
    # Applying the same weights again changes nothing (idempotent).
    again = route_weights(
        after, "movies", [t.name.value for t in TARGETS], "3", "4", Weights(stable=90, candidate=10)
    )
    assert not again.changed


def rule_target(rule: dict[str, Any]) -> str:
    matches = rule.get("matches")
    return matches[0]["headers"][0]["value"] if matches else "cpu-onnxruntime"


def test_a_route_without_the_candidate_reports_it_missing() -> None:
    plan = route_weights(
        route({"3": 100}), "movies", ["cpu-onnxruntime", "cpu-openvino"], "3", "4",
        Weights(stable=80, candidate=20),
    )  # fmt: skip
    assert plan.missing_candidate == [0, 1]


def spec(**kw: Any) -> RolloutSpec:
    return RolloutSpec.model_validate({"recModel": "movies", "candidateVersion": "4", **kw})


@pytest.mark.parametrize(
    ("fields", "annotations", "expected"),
    [
        ({}, None, (False, False, 0)),
        ({"promote": True}, None, (True, False, 0)),
        ({}, {"recops.io/promote": "true"}, (True, False, 0)),
        ({}, {"recops.io/abort": "True"}, (False, True, 0)),
        ({"retry": 1}, {"recops.io/retry": "3"}, (False, False, 3)),
        ({"retry": 2}, {"recops.io/retry": "one"}, (False, False, 2)),
        ({}, {"recops.io/abort": "false"}, (False, False, 0)),
    ],
)
def test_controls_merge_spec_and_annotations(
    fields: dict[str, Any], annotations: dict[str, str] | None, expected: tuple[bool, bool, int]
) -> None:
    c = controls_of(spec(**fields), annotations)
    assert (c.promote, c.abort, c.retry) == expected


def test_one_machine_control_file(tmp_path: Path) -> None:
    from recops_operator.rollout.local import read_controls

    path = tmp_path / "control.json"
    assert read_controls(path) == read_controls(None)  # no file: no control
    path.write_text('{"abort": true, "retry": 2}')
    c = read_controls(path)
    assert (c.promote, c.abort, c.retry) == (False, True, 2)
    path.write_text('{"promo')  # half written: ignored until complete
    assert not read_controls(path).abort
