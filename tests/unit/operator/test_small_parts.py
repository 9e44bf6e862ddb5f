"""Cron schedules, spec errors, job observations, manifests, drift checks and RBAC."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recops_operator import rbac
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.targets import TargetName
from recops_operator.controllers.apply import is_subset, status_patch
from recops_operator.decisions.jobs import (
    JobState,
    engine_from_manifest,
    observe_batch_job,
    observe_ray_job,
    termination_message,
)
from recops_operator.render.common import object_name
from recops_operator.schedule import next_fire, parse_cron
from recops_operator.validation import InvalidSpecError, parse_spec
from recops_testkit.emulator import json_path


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 3 * * *", "2026-03-01T03:00", "2026-03-02T03:00"),
        ("*/15 * * * *", "2026-03-01T03:07", "2026-03-01T03:15"),
        ("@weekly", "2026-03-04T10:00", "2026-03-08T00:00"),  # Sunday
        ("30 2 1 * *", "2026-01-31T00:00", "2026-02-01T02:30"),
        ("0 0 * * 1-5", "2026-03-06T12:00", "2026-03-09T00:00"),  # Friday -> Monday
    ],
)
def test_next_fire(expr: str, after: str, expected: str) -> None:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert next_fire(expr, start) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_a_bad_schedule_names_the_field() -> None:
    with pytest.raises(ValueError, match="hour '25'"):
        parse_cron("0 25 * * *")


def test_spec_errors_name_every_field_with_its_path() -> None:
    with pytest.raises(InvalidSpecError) as err:
        parse_spec(
            RecModelSpec,
            {
                "dataset": {"format": "csv"},
                "targets": [{"name": "cpu-onnxruntime", "replicas": -1}],
            },
        )
    message = str(err.value)
    assert "spec.dataset.format: Input should be" in message
    assert "spec.targets[0].replicas: Input should be greater than or equal to 0" in message


def test_ray_job_observation_follows_kuberay_fields() -> None:
    assert observe_ray_job(None).state == JobState.ABSENT
    assert observe_ray_job({"status": {}}).state == JobState.PENDING
    assert observe_ray_job({"status": {"jobDeploymentStatus": "Running"}}).state == JobState.RUNNING
    done = observe_ray_job({"status": {"jobStatus": "SUCCEEDED", "jobId": "j1"}})
    assert (done.state, done.ray_job_id) == (JobState.SUCCEEDED, "j1")
    failed = observe_ray_job(
        {
            "status": {
                "jobStatus": "FAILED",
                "reason": "AppFailed",
                "message": "Traceback: CUDA out of memory",
            }
        }
    )
    assert failed.state == JobState.FAILED and "CUDA out of memory" in failed.message
    assert (
        observe_ray_job(
            {"status": {"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"}}
        ).state
        == JobState.FAILED
    )


def test_batch_job_observation_uses_its_conditions() -> None:
    assert observe_batch_job({"status": {"active": 1}}).state == JobState.RUNNING
    failed = observe_batch_job(
        {
            "status": {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "m",
                    }
                ]
            }
        }
    )
    assert (failed.state, failed.message) == (JobState.FAILED, "BackoffLimitExceeded: m")


def test_the_engine_comes_from_the_newest_successful_pod() -> None:
    manifest = json.dumps(
        {
            "target": "edge-int8",
            "precision": "int8",
            "input_spec": {"maxlen": 50, "num_items": 10, "num_users": 5},
            "model_version": "3",
            "model_sha256": "0" * 64,
            "artifact": "a",
            "files": {"a": "b"},
            "latency": [{"batch": 1, "p50_ms": 1, "p99_ms": 2, "users_per_second": 3}],
        }
    )
    pods = [
        {
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {
                "containerStatuses": [
                    {"name": "compile", "state": {"terminated": {"exitCode": 1, "message": "boom"}}}
                ]
            },
        },
        {
            "metadata": {"creationTimestamp": "2026-01-01T00:01:00Z"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "compile",
                        "state": {"terminated": {"exitCode": 0, "message": manifest}},
                    }
                ]
            },
        },
    ]
    text = termination_message(pods)
    assert text == manifest
    engine = engine_from_manifest(TargetName.EDGE_INT8, "/a", text)
    assert engine is not None and engine.precision == "int8" and len(engine.sha256) == 64
    assert engine_from_manifest(TargetName.EDGE_INT8, "/a", "Traceback ...") is None


def test_names_stay_dns_labels() -> None:
    long = object_name("a" * 60, "42", "gpu-onnxruntime-cuda")
    assert len(long) == 63 and long != object_name("a" * 60, "43", "gpu-onnxruntime-cuda")
    assert object_name("movies", "1.2", "cpu-onnxruntime") == "movies-1-2-cpu-onnxruntime"


def test_drift_ignores_server_defaults_but_not_changes() -> None:
    desired = {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}}
    observed = {
        "replicas": 2,
        "revisionHistoryLimit": 10,
        "template": {"spec": {"containers": [{"name": "c", "imagePullPolicy": "Always"}]}},
    }
    assert is_subset(desired, observed)
    assert not is_subset(desired, {**observed, "replicas": 7})
    assert status_patch({"a": 1, "b": 2}, {"a": 1, "c": 3}) == {"c": 3, "b": None}


def test_printer_column_paths() -> None:
    obj = {"status": {"phase": "Serving", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert json_path(obj, ".status.phase") == "Serving"
    assert json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"


def test_rbac_covers_what_kopf_needs_and_grants_no_wildcards() -> None:
    for plural in ("recmodels", "trainingruns", "rollouts"):
        for verb in ("list", "watch", "patch"):
            assert rbac.allows("recops.io", plural, verb)
    assert rbac.allows("", "events", "create")
    assert not rbac.allows("", "secrets", "get")  # credentials reach pods by reference only
    role = rbac.cluster_role()
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
