"""Every object the operator renders is one a real API server accepts, and says what it must."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from recops_contracts.drift import DriftThresholds
from recops_contracts.training import TuneSpec
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import TrainingMode, TrainingRunSpec
from recops_operator.render.compile import CompileInputs, render_compile_job
from recops_operator.render.serving import (
    ServedVersion,
    render_deployment,
    render_grpc_route,
    render_hpa,
    render_service,
    render_service_monitor,
)
from recops_operator.render.training_job import (
    TrainingJobInputs,
    render_config_map,
    render_fallback_job,
    render_ray_job,
    train_config,
)
from recops_operator.render.trainingrun import job_inputs
from recops_operator.settings import OperatorSettings
from recops_testkit.schemas import validate_object

OWNER = {
    "apiVersion": "recops.io/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "movies-g1", "namespace": "ml", "uid": "1234"},
}


@pytest.fixture()
def spec() -> RecModelSpec:
    return RecModelSpec.model_validate(
        {
            "dataset": {"format": "movielens-1m"},
            "training": {"workers": 2, "gpusPerWorker": 1, "cpusPerWorker": 4, "memory": "8Gi"},
            "mlflow": {"trackingUri": "http://mlflow:5000", "secretRef": "mlflow-creds"},
            "targets": [
                {"name": "cpu-onnxruntime", "replicas": 2},
                {
                    "name": "gpu-tensorrt",
                    "resources": {"gpu": 1, "cpu": "2", "memory": "4Gi"},
                    "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
                },
            ],
        }
    )


@pytest.fixture()
def settings() -> OperatorSettings:
    return OperatorSettings()


@pytest.fixture()
def inputs(spec: RecModelSpec, settings: OperatorSettings) -> TrainingJobInputs:
    run = TrainingRunSpec(rec_model="movies", active_deadline="2h")
    return job_inputs(settings, "ml", "movies-g1", run, spec)


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_ray_job_has_head_gpu_workers_and_the_train_entrypoint(
    inputs: TrainingJobInputs, settings: OperatorSettings
) -> None:
    job = render_ray_job(inputs, "movies-g1-a1", "ml-movies-g1-a1", settings, OWNER)
    validate_object(job)
    spec = job["spec"]
    assert shlex.split(spec["entrypoint"]) == [
        "recops",
        "train",
        "--config",
        "/etc/recops/train.json",
        "--run-name",
        "movies-g1-a1",
    ]
    assert spec["jobId"] == "ml-movies-g1-a1"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 600
    assert spec["activeDeadlineSeconds"] == 7200
    workers = spec["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] == 2
    worker = workers["template"]["spec"]
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert worker["nodeSelector"] == settings.gpu_node_selector
    assert worker["tolerations"][0]["key"] == "nvidia.com/gpu"
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert head["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    assert {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"} in head["env"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "1234"


def test_fallback_job_runs_ray_in_one_pod_without_retrying_itself(
    inputs: TrainingJobInputs, settings: OperatorSettings
) -> None:
    job = render_fallback_job(inputs, "movies-g1-a1", settings, OWNER)
    validate_object(job)
    assert job["spec"]["backoffLimit"] == 0
    container = _pod(job)["containers"][0]
    assert container["command"][:2] == ["recops", "train"]
    assert container["resources"]["limits"] == {
        "cpu": "8",
        "memory": "8Gi",
        "nvidia.com/gpu": "2",
        "ephemeral-storage": settings.scratch_size,
    }


def test_config_map_holds_the_config_the_trainer_reads(inputs: TrainingJobInputs) -> None:
    cm = render_config_map(inputs, OWNER)
    validate_object(cm)
    config = json.loads(cm["data"]["train.json"])
    assert set(config) == {
        "dataset",
        "model",
        "resources",
        "gate",
        "mlflow",
        "trainingRun",
        "output",
    }
    assert config["trainingRun"] == "ml/movies-g1"
    assert config["model"]["sseUserProb"] == 0.92  # camelCase, as in the CR API
    assert config["mlflow"]["registeredModelName"] == "movies"


def test_tune_mode_runs_recops_tune_with_the_search_space(
    inputs: TrainingJobInputs, settings: OperatorSettings
) -> None:
    tune = TuneSpec.model_validate(
        {"searchSpace": {"dropout": {"distribution": "uniform", "low": 0.1, "high": 0.5}}}
    )
    tuned = TrainingJobInputs(**{**inputs.__dict__, "mode": TrainingMode.TUNE, "tune": tune})
    job = render_ray_job(tuned, "t-a1", "ml-t-a1", settings, None)
    assert shlex.split(job["spec"]["entrypoint"])[:2] == ["recops", "tune"]
    assert train_config(tuned)["tune"]["searchSpace"]["dropout"]["high"] == 0.5


def test_compile_jobs_place_gpu_targets_on_gpu_nodes(
    spec: RecModelSpec, settings: OperatorSettings
) -> None:
    ci = CompileInputs("ml", "movies-g1", "movies", "models:/movies/3", "3", 2, settings.image)
    cpu, gpu = (render_compile_job(ci, t, settings, OWNER) for t in spec.targets)
    for job in (cpu, gpu):
        validate_object(job)
    assert "nodeSelector" not in _pod(cpu)
    assert _pod(gpu)["nodeSelector"] == settings.gpu_node_selector
    assert _pod(gpu)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    container = _pod(gpu)["containers"][0]
    assert container["args"] == [
        "models:/movies/3",
        "gpu-tensorrt",
        "/artifacts/ml/movies/3/gpu-tensorrt",
    ]
    assert "recops compile" in container["command"][2]
    assert gpu["spec"]["backoffLimit"] == 2


def test_serving_objects_are_valid_and_locked_down(
    spec: RecModelSpec, settings: OperatorSettings
) -> None:
    owner = {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "RecModel",
        "metadata": {"name": "movies", "uid": "u1"},
    }
    cpu = ServedVersion("ml", "movies", "3", spec.targets[0])
    gpu = ServedVersion("ml", "movies", "3", spec.targets[1])
    dep = render_deployment(cpu, settings, owner)
    validate_object(dep)
    container = _pod(dep)["containers"][0]
    assert container["command"][:4] == [
        "recops",
        "serve",
        "--engine",
        "3=/artifacts/ml/movies/3/cpu-onnxruntime",
    ]
    assert container["readinessProbe"]["grpc"] == {"port": 8500}
    # Liveness asks the process, off the request path; readiness the gRPC health service.
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert dep["spec"]["replicas"] == 2
    gpu_dep = render_deployment(gpu, settings, owner)
    validate_object(gpu_dep)
    assert "replicas" not in gpu_dep["spec"]  # the HPA owns it
    assert _pod(gpu_dep)["containers"][0]["image"] == settings.gpu_runtime_image
    assert _pod(gpu_dep)["tolerations"][0]["key"] == "nvidia.com/gpu"
    svc = render_service(cpu, owner)
    validate_object(svc)
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {
        "grpc": 8500,
        "http": 8080,
        "metrics": 9090,
    }
    assert render_hpa(cpu, owner) is None
    hpa = render_hpa(gpu, owner)
    assert hpa is not None
    validate_object(hpa)
    assert hpa["spec"]["maxReplicas"] == 3
    validate_object(render_service_monitor("ml", "movies", owner))


def test_grpc_route_sends_everything_to_stable_until_a_rollout_moves_it(
    spec: RecModelSpec, settings: OperatorSettings
) -> None:
    route = render_grpc_route("ml", "movies", spec.targets, {"3": 100, "4": 0}, settings, None)
    validate_object(route)
    default, gpu = route["spec"]["rules"]
    # Every rule matches only this RecModel's requests (x-recops-model).
    assert default["matches"] == [
        {"headers": [{"type": "Exact", "name": "x-recops-model", "value": "movies"}]}
    ]
    assert default["backendRefs"] == [
        {"name": "movies-3-cpu-onnxruntime", "port": 8500, "weight": 100},
        {"name": "movies-4-cpu-onnxruntime", "port": 8500, "weight": 0},
    ]
    assert [h["value"] for h in gpu["matches"][0]["headers"]] == ["movies", "gpu-tensorrt"]
    assert route["spec"]["parentRefs"] == [{"name": "recops-gateway"}]


def test_the_trainer_parses_the_rendered_config(inputs: TrainingJobInputs) -> None:
    from recops_trainer.config import parse_config

    tune = TuneSpec.model_validate(
        {"searchSpace": {"numBlocks": {"distribution": "choice", "values": [1, 2]}}}
    )
    for case in (
        inputs,
        TrainingJobInputs(**{**inputs.__dict__, "mode": TrainingMode.TUNE, "tune": tune}),
    ):
        config = parse_config(json.loads(json.dumps(train_config(case))))
        assert config.training_run == "ml/movies-g1"
        assert config.model.sse_user_prob == pytest.approx(0.92)
        assert config.mlflow.tracking_uri == "http://mlflow:5000"


def test_the_rbac_role_is_a_valid_cluster_role() -> None:
    from recops_operator import rbac

    validate_object(rbac.cluster_role())


def test_the_serve_command_is_one_the_runtime_accepts_with_processes_per_requested_core() -> None:
    """The Deployment's command parses with the real `recops serve` options."""

    from typer.main import get_command

    from recops_cli.main import app
    from recops_operator.render.serving import serve_args

    spec = RecModelSpec.model_validate(
        {
            "dataset": {"format": "synthetic"},
            "targets": [
                {"name": "cpu-onnxruntime", "resources": {"cpu": "2500m"}},
                {"name": "gpu-tensorrt", "resources": {"gpu": 1}},
            ],
        }
    )
    group: Any = get_command(app)
    serve = group.get_command(group.make_context("recops", ["serve"]), "serve")
    assert serve is not None
    cpu = serve_args(ServedVersion("ml", "movies", "3", spec.targets[0]))
    params = serve.make_context("serve", cpu[2:]).params
    # One server process per requested core, each with one single-threaded engine worker.
    assert (params["processes"], params["engine_workers"], params["engine_threads"]) == (3, 1, 1)
    assert params["max_batch_size"] == spec.targets[0].max_batch_size
    # The port the gateway exposes answers no reflection, and the pod serves no admin API
    # beyond its own loopback.
    assert params["reflection"] is False
    assert params["admin_host"] == "127.0.0.1"
    gpu = serve_args(ServedVersion("ml", "movies", "3", spec.targets[1]))
    gpu_params = serve.make_context("serve", gpu[2:]).params
    assert gpu_params["engine_workers"] is None  # runtime: 1
    assert gpu_params["processes"] == 1  # the device, not the interpreter, is shared
    # The RecModel's drift thresholds reach the runtime whole, defaults left out.
    drift = RecModelSpec.model_validate(
        spec.to_wire()
        | {"retraining": {"drift": {"statistics": {"window": 5000, "popularityPsi": 0.2}}}}
    ).retraining.drift.statistics
    args = serve_args(ServedVersion("ml", "movies", "3", spec.targets[0], drift))
    flag = serve.make_context("serve", args[2:]).params["drift"]
    assert DriftThresholds.model_validate_json(flag) == drift
    assert DriftThresholds.model_validate_json(flag).popularity_psi == 0.2
    assert "--drift" not in serve_args(ServedVersion("ml", "movies", "3", spec.targets[0]))


def test_a_feedback_volume_joins_serving_logs_to_training_data(spec: RecModelSpec) -> None:
    from recops_trainer.config import parse_config

    settings = OperatorSettings(feedback_claim="recops-feedback")
    dep = render_deployment(ServedVersion("ml", "movies", "3", spec.targets[0]), settings, None)
    validate_object(dep)
    container = _pod(dep)["containers"][0]
    # Each pod logs to a folder of its own (Kubernetes expands $(POD_NAME) from env).
    assert container["command"][-2:] == ["--feedback-log", "/feedback/ml/movies/$(POD_NAME)"]
    assert container["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    assert {"name": "feedback", "mountPath": "/feedback"} in container["volumeMounts"]
    assert {"name": "feedback", "persistentVolumeClaim": {"claimName": "recops-feedback"}} in (
        _pod(dep)["volumes"]
    )
    run = job_inputs(settings, "ml", "movies-g1", TrainingRunSpec(rec_model="movies"), spec)
    config = parse_config(json.loads(json.dumps(train_config(run))))
    assert config.feedback_volume == "/feedback/ml/movies"
    job = render_ray_job(run, "movies-g1-a1", "movies-g1-a1", settings, None)
    validate_object(job)
    cluster = job["spec"]["rayClusterSpec"]
    for group in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        pod = group["template"]["spec"]
        mount = {"name": "feedback", "mountPath": "/feedback", "readOnly": True}
        assert mount in pod["containers"][0]["volumeMounts"]
        claim = {"claimName": "recops-feedback", "readOnly": True}
        assert {"name": "feedback", "persistentVolumeClaim": claim} in pod["volumes"]
    # Without the setting nothing changes: no flag, no volume, no key in the config.
    plain = render_deployment(
        ServedVersion("ml", "movies", "3", spec.targets[0]), OperatorSettings(), None
    )
    assert "--feedback-log" not in _pod(plain)["containers"][0]["command"]
    assert "feedbackVolume" not in train_config(
        job_inputs(
            OperatorSettings(),
            "ml",
            "movies-g1",
            TrainingRunSpec(rec_model="movies"),
            spec,
        )
    )


def test_a_training_runs_overrides_change_only_the_fields_they_name(spec: RecModelSpec) -> None:
    from recops_operator.validation import InvalidSpecError

    rm = spec.model_copy(
        update={"model": spec.model.model_copy(update={"item_dim": 64, "user_dim": 32})}
    )
    settings = OperatorSettings()
    run = TrainingRunSpec.model_validate(
        {"recModel": "movies", "model": {"epochs": 5}, "resources": {"workers": 4}}
    )
    inputs = job_inputs(settings, "ml", "movies-s1", run, rm)
    # The run's fields on top of the RecModel's, not the defaults of a whole new block.
    assert (inputs.model.epochs, inputs.model.item_dim, inputs.model.user_dim) == (5, 64, 32)
    assert (inputs.resources.workers, inputs.resources.memory) == (4, "8Gi")
    assert inputs.resources.gpus_per_worker == 1 and inputs.dataset == rm.dataset
    # A field that does not fit the RecModel's others is refused, naming the field.
    heads = TrainingRunSpec.model_validate({"recModel": "movies", "model": {"numHeads": 5}})
    with pytest.raises(InvalidSpecError, match=r"spec\.model.*numHeads \(5\) must divide"):
        job_inputs(settings, "ml", "movies-s2", heads, rm)
