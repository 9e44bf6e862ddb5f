"""What a first real deployment needs from the renderers and decisions: replicas that do not
tie, shared storage for Ray across pods, compile Jobs that can fetch their model, routes that
keep several RecModels apart, pods that drain, and names a Service can take."""

from __future__ import annotations

import random
import shlex
from typing import Any

import pytest

from recops_contracts.training import DatasetFormat
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import TrainingMode, TrainingRunSpec
from recops_operator.render.compile import ARTIFACTS_MOUNT, compile_inputs, render_compile_job
from recops_operator.render.recmodel import render_serving
from recops_operator.render.serving import (
    DRAIN_DELAY_S,
    DRAIN_TIMEOUT_S,
    GRPC_PORT,
    MODEL_HEADER,
    TARGET_HEADER,
    ServedVersion,
    render_deployment,
)
from recops_operator.render.training_job import STORAGE_MOUNT, render_ray_job, train_config
from recops_operator.render.trainingrun import job_inputs, require_shared_storage
from recops_operator.runner import PRIORITY_RANGE, kopf_settings, peering_priority
from recops_operator.settings import OperatorSettings
from recops_operator.validation import InvalidSpecError, check_dns_1035
from recops_testkit.schemas import validate_object

Obj = dict[str, Any]
SETTINGS = OperatorSettings(mlflow_secret=None)
OWNER = {
    "apiVersion": "recops.io/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "movies-g1", "namespace": "ml", "uid": "1234"},
}


def recmodel_spec(**training: Any) -> RecModelSpec:
    return RecModelSpec.model_validate(
        {
            "dataset": {"format": "movielens-1m"},
            "training": {"workers": 2, "cpusPerWorker": 2, **training},
            "mlflow": {"trackingUri": "http://mlflow:5000", "secretRef": "mlflow-creds"},
            "targets": [{"name": "cpu-onnxruntime"}, {"name": "cpu-openvino"}],
        }
    )


# 1. Peering priority -----------------------------------------------------------------


def test_replicas_with_the_charts_settings_get_distinct_priorities() -> None:
    settings = OperatorSettings(standalone=False)
    rng = random.Random(7)
    priorities = {peering_priority(settings, rng) for _ in range(1000)}
    assert len(priorities) == 1000
    assert all(PRIORITY_RANGE[0] <= p <= PRIORITY_RANGE[1] for p in priorities)


def test_a_configured_priority_wins() -> None:
    settings = OperatorSettings(priority=100)
    assert peering_priority(settings) == 100
    assert kopf_settings(settings, peering_priority(settings)).peering.priority == 100


# 2. Ray across pods --------------------------------------------------------------------


def _mounts(container: Obj) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container["volumeMounts"]}


def test_a_rayjob_mounts_the_storage_claim_at_one_path_in_head_and_workers() -> None:
    spec = recmodel_spec(storageClaim="training-runs")
    inputs = job_inputs(SETTINGS, "ml", "movies-g1", TrainingRunSpec(rec_model="movies"), spec)
    job = render_ray_job(inputs, "movies-g1-a1", "ml-movies-g1-a1", SETTINGS, OWNER)
    validate_object(job)
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        assert _mounts(pod["containers"][0])[STORAGE_MOUNT] == "storage"
        claim = next(v for v in pod["volumes"] if v["name"] == "storage")
        assert claim["persistentVolumeClaim"]["claimName"] == "training-runs"
    # The trainer writes the snapshot to <output>/snapshot and, without a storagePath,
    # checkpoints to <output>/ray: both on the claim.
    output = train_config(inputs)["output"]
    assert output == f"{STORAGE_MOUNT}/ml/movies-g1"


@pytest.mark.parametrize("fmt", list(DatasetFormat))
@pytest.mark.parametrize("mode", [TrainingMode.TRAIN, TrainingMode.TUNE])
def test_training_on_kuberay_without_shared_storage_is_an_invalid_spec(
    fmt: DatasetFormat, mode: TrainingMode
) -> None:
    spec = recmodel_spec().model_copy(
        update={"dataset": recmodel_spec().dataset.model_copy(update={"format": fmt})}
    )
    tune = {"searchSpace": {"dropout": {"distribution": "uniform", "low": 0.1, "high": 0.3}}}
    run = TrainingRunSpec.model_validate(
        {
            "recModel": "movies",
            "mode": mode.value,
            **({"tune": tune} if mode.value == "tune" else {}),
        }
    )
    # The streamed formats are refused earlier, naming the prepared snapshot's claim.
    with pytest.raises(
        InvalidSpecError, match=r"spec\.(training\.storageClaim|dataset\.preparedClaim)"
    ):
        require_shared_storage(job_inputs(SETTINGS, "ml", "movies-g1", run, spec))


def test_a_run_override_can_name_the_storage_claim() -> None:
    run = TrainingRunSpec.model_validate(
        {"recModel": "movies", "resources": {"storageClaim": "training-runs"}}
    )
    inputs = job_inputs(SETTINGS, "ml", "movies-g1", run, recmodel_spec())
    require_shared_storage(inputs)  # no error


# 3. Compile Jobs -----------------------------------------------------------------------


def test_the_compile_container_reaches_mlflow_and_reads_the_runs_own_snapshot() -> None:
    spec = recmodel_spec(storageClaim="training-runs")
    inputs = job_inputs(SETTINGS, "ml", "movies-g1", TrainingRunSpec(rec_model="movies"), spec)
    ci = compile_inputs(inputs, "movies", "3", 1, SETTINGS)
    job = render_compile_job(ci, spec.targets[0], SETTINGS, OWNER)
    validate_object(job)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert container["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    mounts = _mounts(container)
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for var in ("HOME", "XDG_CACHE_HOME", "RECOPS_DATA_DIR"):
        assert any(env[var].startswith(path) for path in writable - {ARTIFACTS_MOUNT}), var
    snapshot = f"{train_config(inputs)['output']}/snapshot"
    assert container["args"][3:] == ["--data", snapshot]
    assert mounts[STORAGE_MOUNT] == "storage"
    assert job["spec"]["activeDeadlineSeconds"] == SETTINGS.compile_deadline_seconds
    assert container["resources"]["requests"]["memory"] == SETTINGS.compile_memory
    # The script passes the extra arguments on to recops compile.
    line = shlex.join(["sh", "-c", container["command"][2], *container["args"]])
    assert "--overwrite" in line and '"$@"' in container["command"][2]


# 4. Several RecModels behind one Gateway -----------------------------------------------


def _rule_matches(rule: Obj, headers: dict[str, str]) -> int | None:
    """The number of header matches of the rule's best match for ``headers``, or None."""
    best: int | None = None
    for match in rule.get("matches") or [{}]:
        wanted = match.get("headers") or []
        if all(headers.get(h["name"]) == h["value"] for h in wanted):
            best = max(best or 0, len(wanted))
    return best


def route_of(routes: list[Obj], headers: dict[str, str]) -> list[str]:
    """The backends a Gateway sends a request to, by the GRPCRoute precedence of
    https://gateway-api.sigs.k8s.io/reference/spec/#grpcrouterule: hostname (none of ours set
    one), method match (ours match every method), most header matches, then the oldest
    route (here: the first in ``routes``) and the first rule."""
    best: tuple[int, int, int] | None = None
    chosen: Obj | None = None
    for age, route in enumerate(routes):
        for index, rule in enumerate(route["spec"]["rules"]):
            count = _rule_matches(rule, headers)
            if count is None:
                continue
            key = (-count, age, index)
            if best is None or key < best:
                best, chosen = key, rule
    return [] if chosen is None else [b["name"] for b in chosen["backendRefs"]]


def _serving(name: str, versions: dict[str, list[str]], weights: dict[str, int]) -> list[Obj]:
    spec = recmodel_spec()
    by_name = {t.name.value: t for t in spec.targets}
    served = [ServedVersion("ml", name, v, by_name[t]) for t, vs in versions.items() for v in vs]
    roles = {t: (vs[0], vs[-1]) for t, vs in versions.items()}
    owner = {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "RecModel",
        "metadata": {"name": name, "namespace": "ml", "uid": name},
    }
    return render_serving(SETTINGS, owner, spec, served, roles, weights)


def test_each_recmodels_requests_reach_only_its_own_backends() -> None:
    objs = _serving("movies", {"cpu-onnxruntime": ["1"], "cpu-openvino": ["1"]}, {"1": 100})
    objs += _serving("books", {"cpu-onnxruntime": ["4"], "cpu-openvino": ["4"]}, {"4": 100})
    routes = [o for o in objs if o["kind"] == "GRPCRoute"]
    assert [r["metadata"]["name"] for r in routes] == ["movies", "books"]  # movies is older
    for route in routes:
        validate_object(route)
        for rule in route["spec"]["rules"]:
            assert rule["matches"], "a rule without matches takes every model's requests"
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    for model, version in (("movies", "1"), ("books", "4")):
        default = route_of(routes, {MODEL_HEADER: model})
        assert default == [f"{model}-{version}-cpu-onnxruntime"]
        other = route_of(routes, {MODEL_HEADER: model, TARGET_HEADER: "cpu-openvino"})
        assert other == [f"{model}-{version}-cpu-openvino"]
        assert set(default + other) <= services


def test_a_route_lists_a_version_only_on_targets_where_it_runs() -> None:
    objs = _serving(
        "movies", {"cpu-onnxruntime": ["1", "2"], "cpu-openvino": ["1"]}, {"1": 90, "2": 10}
    )
    (route,) = [o for o in objs if o["kind"] == "GRPCRoute"]
    backends = {
        rule["matches"][0]["headers"][-1]["value"]: [b["name"] for b in rule["backendRefs"]]
        for rule in route["spec"]["rules"]
    }
    assert backends == {
        "movies": ["movies-1-cpu-onnxruntime", "movies-2-cpu-onnxruntime"],
        "cpu-openvino": ["movies-1-cpu-openvino"],
    }
    assert all(b["port"] == GRPC_PORT for r in route["spec"]["rules"] for b in r["backendRefs"])


# 6. Serving pods drain; liveness is not readiness; names -------------------------------


def test_serving_pods_drain_within_their_grace_period() -> None:
    served = ServedVersion("ml", "movies", "1", recmodel_spec().targets[0])
    deployment = render_deployment(served, SETTINGS, None)
    validate_object(deployment)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["command"]
    assert args[args.index("--drain-delay-s") + 1] == str(DRAIN_DELAY_S)
    # The supervisor waits drain delay + drain timeout + 30 s for its processes.
    assert pod["terminationGracePeriodSeconds"] >= DRAIN_DELAY_S + DRAIN_TIMEOUT_S + 30
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "grpc" in container["readinessProbe"]
    assert container["livenessProbe"]["timeoutSeconds"] > 1


@pytest.mark.parametrize("name", ["1movies", "-movies", "Movies"])
def test_a_name_that_cannot_start_a_service_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidSpecError, match="DNS-1035"):
        check_dns_1035("RecModel", name)
    with pytest.raises(InvalidSpecError, match=r"metadata\.name"):
        job_inputs(SETTINGS, "ml", name, TrainingRunSpec(rec_model="movies"), recmodel_spec())
