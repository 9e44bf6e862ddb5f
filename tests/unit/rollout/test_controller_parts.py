"""The Rollout controller's pure parts: GRPCRoute weights, manual controls, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recops_operator.api.recmodel import DeploymentTarget
from recops_operator.api.rollout import RolloutSpec, Weights
from recops_operator.render.serving import (
    TARGET_HEADER,
    render_grpc_route,
    render_role_services,
    render_service_monitor,
)
from recops_operator.render.traffic import role_backends, route_weights, version_backends
from recops_operator.rollout.controls import controls_of
from recops_operator.settings import OperatorSettings
from recops_testkit.schemas import validate_object

TARGETS = [
    DeploymentTarget.model_validate({"name": "cpu-onnxruntime"}),
    DeploymentTarget.model_validate({"name": "cpu-openvino"}),
]
NAMES = [t.name.value for t in TARGETS]
W90 = Weights(stable=90, candidate=10)


def route(weights: dict[str, int]) -> dict[str, Any]:
    return render_grpc_route("ml", "movies", TARGETS, weights, OperatorSettings(), None)


def test_weights_reach_every_rule_and_the_route_stays_valid(shared_crd_schemas: Path) -> None:
    before = route({"3": 100, "4": 0})
    plan = route_weights(before, version_backends("movies", NAMES, "3", "4"), W90)
    assert plan.changed and plan.found and plan.missing_candidate == []
    for rule in plan.rules:
        assert {b["name"]: b["weight"] for b in rule["backendRefs"]} == {
            f"movies-3-{rule_target(rule)}": 90,
            f"movies-4-{rule_target(rule)}": 10,
        }
    after = {**before, "spec": {**before["spec"], "rules": plan.rules}}
    validate_object(after)
    # Applying the same weights again changes nothing (idempotent).
    again = route_weights(after, version_backends("movies", NAMES, "3", "4"), W90)
    assert not again.changed


def rule_target(rule: dict[str, Any]) -> str:
    """The target a rule serves: its target header, or the first target (no header)."""
    headers = [h for m in rule.get("matches", []) for h in m.get("headers", [])]
    return next((h["value"] for h in headers if h["name"] == TARGET_HEADER), "cpu-onnxruntime")


def test_a_route_without_the_candidate_reports_it_missing() -> None:
    plan = route_weights(
        route({"3": 100}),
        version_backends("movies", NAMES, "3", "4"),
        Weights(stable=80, candidate=20),
    )
    assert plan.missing_candidate == [0, 1]


def users_route() -> dict[str, Any]:
    """A user's route: the RecModel's role Services in one rule, an unrelated rule after it."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "public", "namespace": "ml"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "movies-cpu-onnxruntime-stable", "port": 8500},
                        {"name": "movies-cpu-onnxruntime-canary", "port": 8500, "weight": 0},
                        {"name": "mirror", "port": 8500, "weight": 0},
                    ]
                },
                {
                    "matches": [{"method": {"service": "search.v1.Search"}}],
                    "backendRefs": [{"name": "search", "port": 9000}],
                },
            ],
        },
    }


def test_a_users_route_gets_weights_on_the_role_backends_only(shared_crd_schemas: Path) -> None:
    plan = route_weights(users_route(), role_backends("movies", NAMES), W90)
    assert plan.found and plan.changed and plan.missing_candidate == []
    mine, other = plan.rules
    assert [b.get("weight") for b in mine["backendRefs"]] == [90, 10, 0]
    assert other == users_route()["spec"]["rules"][1]
    steered = users_route()
    steered["spec"]["rules"] = plan.rules
    validate_object(steered)
    # A route naming none of the RecModel's Services is reported, not rewritten.
    elsewhere = route_weights(users_route(), role_backends("books", NAMES), W90)
    assert not elsewhere.found and not elsewhere.changed


def test_role_services_select_the_versions_and_stay_out_of_the_scrape() -> None:
    stable, canary = render_role_services("ml", "movies", TARGETS[0], "3", "4", None)
    assert stable["metadata"]["name"] == "movies-cpu-onnxruntime-stable"
    assert canary["metadata"]["name"] == "movies-cpu-onnxruntime-canary"
    assert stable["spec"]["selector"]["recops.io/version"] == "3"
    assert canary["spec"]["selector"]["recops.io/version"] == "4"
    assert stable["spec"]["ports"][0] == {
        "name": "grpc",
        "port": 8500,
        "targetPort": "grpc",
        "appProtocol": "kubernetes.io/h2c",
    }
    monitor = render_service_monitor("ml", "movies", None)["spec"]["selector"]["matchLabels"]
    for svc in (stable, canary):
        labels = svc["metadata"]["labels"]
        assert not all(labels.get(k) == v for k, v in monitor.items())


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
    from recops_operator.local_rollout.driver import read_controls

    path = tmp_path / "control.json"
    assert read_controls(path) == read_controls(None)  # no file: no control
    path.write_text('{"abort": true, "retry": 2}')
    c = read_controls(path)
    assert (c.promote, c.abort, c.retry) == (False, True, 2)
    path.write_text('{"promo')  # half written: ignored until complete
    assert not read_controls(path).abort
