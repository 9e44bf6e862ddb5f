"""Issue 27, finding 8 (and 4's allow-list): tenant guardrails refuse a training image, a
dataset URI or a tracking server outside the operator's settings with InvalidSpec naming
the field and the setting."""

from __future__ import annotations

from typing import Any

import pytest

from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import TrainingRunSpec
from recops_operator.render.training_job import render_ray_job
from recops_operator.render.trainingrun import job_inputs
from recops_operator.settings import OperatorSettings
from recops_operator.validation import InvalidSpecError

Obj = dict[str, Any]
BASE: Obj = {
    "dataset": {"format": "movielens-1m"},
    "training": {"storageClaim": "recops-artifacts"},
    "targets": [{"name": "cpu-onnxruntime"}],
}


def _inputs(spec: Obj, *, run: Obj | None = None, **settings: Any) -> Any:
    rm = RecModelSpec.model_validate(spec)
    run_spec = TrainingRunSpec.model_validate({"recModel": "movies", **(run or {})})
    return job_inputs(OperatorSettings(**settings), "ml", "movies-g1", run_spec, rm)


def _with(**blocks: Obj) -> Obj:
    spec = dict(BASE)
    for key, value in blocks.items():
        spec[key] = {**spec.get(key, {}), **value}
    return spec


def test_the_defaults_pass() -> None:
    _inputs(BASE)


def test_an_image_outside_the_allowed_prefixes_is_refused() -> None:
    with pytest.raises(InvalidSpecError) as err:
        _inputs(_with(training={"image": "docker.io/evil/miner:latest"}))
    assert "spec.training.image" in str(err.value)
    assert "RECOPS_OPERATOR_ALLOWED_IMAGE_PREFIXES" in str(err.value)
    _inputs(_with(training={"image": "ghcr.io/recops/recops-trainer:0.2.0"}))


def test_a_trainingrun_override_of_the_image_is_checked_too() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.resources\.image"):
        _inputs(BASE, run={"resources": {"image": "quay.io/other/trainer:1"}})


def test_an_empty_prefix_list_allows_any_image() -> None:
    _inputs(_with(training={"image": "quay.io/other/trainer:1"}), allowed_image_prefixes=[])


@pytest.mark.parametrize(
    ("uri", "setting"),
    [
        ("http://files.grouplens.org/ml-1m.zip", "ALLOWED_DATASET_SCHEMES"),
        ("s3://bucket/ratings.csv", "ALLOWED_DATASET_SCHEMES"),
        ("https://169.254.169.254/latest/meta-data", "ALLOWED_DATASET_HOSTS"),
        ("https://attacker.example/ratings.csv", "ALLOWED_DATASET_HOSTS"),
    ],
)
def test_a_dataset_uri_outside_the_settings_is_refused(uri: str, setting: str) -> None:
    with pytest.raises(InvalidSpecError) as err:
        _inputs(_with(dataset={"uri": uri}))
    assert str(err.value).startswith("spec.dataset.uri:")
    assert f"RECOPS_OPERATOR_{setting}" in str(err.value)


def test_allowed_hosts_match_exactly_or_by_a_dot_suffix() -> None:
    hosts: dict[str, Any] = {"allowed_dataset_hosts": [".data.corp", "mirror.example"]}
    _inputs(_with(dataset={"uri": "https://eu.data.corp/r.csv"}), **hosts)
    _inputs(_with(dataset={"uri": "https://mirror.example/r.csv"}), **hosts)
    with pytest.raises(InvalidSpecError):
        _inputs(_with(dataset={"uri": "https://data.corp.evil/r.csv"}), **hosts)
    _inputs(_with(dataset={"uri": "/data/ratings.csv"}))  # the pod's own volumes


def test_a_tracking_server_outside_the_allow_list_is_refused() -> None:
    allowed: dict[str, Any] = {"mlflow_allowed_tracking_uris": ["https://mlflow.corp"]}
    with pytest.raises(InvalidSpecError) as err:
        _inputs(_with(mlflow={"trackingUri": "http://127.0.0.1:9999"}), **allowed)
    assert "spec.mlflow.trackingUri" in str(err.value)
    assert "RECOPS_OPERATOR_MLFLOW_ALLOWED_TRACKING_URIS" in str(err.value)
    _inputs(_with(mlflow={"trackingUri": "https://mlflow.corp:443/"}), **allowed)
    # The operator's own server is always allowed.
    _inputs(_with(mlflow={"trackingUri": OperatorSettings().mlflow_tracking_uri}), **allowed)


def test_the_download_limit_reaches_the_training_pods() -> None:
    settings = OperatorSettings(max_download_bytes=1 << 20)
    inputs = job_inputs(
        settings,
        "ml",
        "movies-g1",
        TrainingRunSpec(rec_model="movies"),
        RecModelSpec.model_validate(BASE),
    )
    job = render_ray_job(inputs, "movies-g1-a1", "id", settings, None)
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in head["env"]}
    assert env["RECOPS_MAX_DOWNLOAD_BYTES"] == str(1 << 20)
