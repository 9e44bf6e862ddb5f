"""The whole life of a RecModel against an emulated API server and a real MLflow:
training on a RayJob, the MLflow verdict, compile Jobs, serving objects and self-healing."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import yaml

from recops_operator import rbac, resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_testkit.emulator import ApiServerEmulator
from recops_testkit.manifests import custom_object
from recops_testkit.schemas import validate_object
from recops_testkit.training_results import engine_manifest, log_training_result

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
RUN = "movies-g1"
RAYJOB = "movies-g1-a1"


def recmodel(tracking_uri: str) -> dict[str, Any]:
    spec = {
        "dataset": {"format": "movielens-1m"},
        "training": {"storageClaim": "training-runs"},
        "mlflow": {"trackingUri": tracking_uri},
        "targets": [
            {"name": "cpu-onnxruntime", "replicas": 2},
            {"name": "gpu-tensorrt", "resources": {"gpu": 1}},
        ],
    }
    return custom_object("RecModel", "movies", NS, spec)


async def status_of(kube: KubeClient, resource: res.Resource, name: str) -> dict[str, Any]:
    obj = await kube.get(resource, NS, name)
    return (obj or {}).get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


async def test_a_recmodel_starts_a_training_run_on_a_rayjob(
    api: ApiServerEmulator,
    kube: KubeClient,
    operator: Any,
    mlflow_server: Any,
    eventually: Eventually,
) -> None:
    await kube.create(recmodel(mlflow_server.url))
    run = await eventually(lambda: kube.get(res.TRAININGRUNS, NS, RUN), "the TrainingRun")
    assert run["spec"]["recModel"] == "movies"
    assert run["metadata"]["ownerReferences"][0]["kind"] == "RecModel"
    job = await eventually(lambda: kube.get(res.RAYJOBS, NS, RAYJOB), "the RayJob")
    validate_object(job)
    assert job["metadata"]["ownerReferences"][0]["name"] == RUN
    config = await kube.get(res.CONFIGMAPS, NS, "movies-g1-config")
    assert config is not None
    assert json.loads(config["data"]["train.json"])["mlflow"]["trackingUri"] == mlflow_server.url
    status = await status_of(kube, res.TRAININGRUNS, RUN)
    assert status["phase"] == "Pending"
    assert (status["jobKind"], status["jobName"], status["attempts"]) == ("RayJob", RAYJOB, 1)
    assert status["rayJobId"] == job["spec"]["jobId"]
    rm = await status_of(kube, res.RECMODELS, "movies")
    assert rm["phase"] == "Training" and rm["activeTrainingRun"] == RUN


async def test_the_run_follows_the_rayjob_and_survives_an_operator_restart(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.patch(
        res.RAYJOBS,
        NS,
        RAYJOB,
        {
            "status": {
                "jobStatus": "RUNNING",
                "jobDeploymentStatus": "Running",
                "jobId": "ml-movies-g1-a1",
                "startTime": "2026-01-01T00:00:00Z",
            }
        },
        subresource="status",
    )

    async def running() -> bool:
        return (await status_of(kube, res.TRAININGRUNS, RUN)).get("phase") == "Running"

    await eventually(running, "phase Running")
    await operator.stop()
    await operator.start()
    await asyncio.sleep(2)  # several resync periods of the new operator
    jobs = [
        j
        for j in await kube.list(res.RAYJOBS, NS)
        if j["metadata"]["labels"].get("recops.io/training-run") == RUN
    ]
    assert [j["metadata"]["name"] for j in jobs] == [RAYJOB]
    status = await status_of(kube, res.TRAININGRUNS, RUN)
    assert (status["phase"], status["attempts"]) == ("Running", 1)


async def test_mlflow_verdict_then_compile_jobs_then_succeeded(
    kube: KubeClient,
    operator: Any,
    mlflow_server: Any,
    eventually: Eventually,
) -> None:
    await asyncio.to_thread(mlflow_server.wait_ready)
    run_id = await asyncio.to_thread(
        log_training_result, mlflow_server.url, f"{NS}/{RUN}", "movies"
    )
    await kube.patch(
        res.RAYJOBS,
        NS,
        RAYJOB,
        {"status": {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}},
        subresource="status",
    )

    async def compiling() -> dict[str, Any] | None:
        s = await status_of(kube, res.TRAININGRUNS, RUN)
        return s if s.get("phase") == "Compiling" else None

    status = await eventually(compiling, "phase Compiling", timeout=30)
    assert status["mlflowRunId"] == run_id
    assert status["modelVersion"] == "1" and status["registeredModel"] == "movies"
    assert status["metrics"]["test_sampled_ndcg_at_10"] == pytest.approx(0.612)
    assert status["gate"]["verdict"] == "candidate" and status["protocol"] == "sampled"
    assert condition(status, "Trained")["status"] == "True"

    names = {
        "cpu-onnxruntime": "movies-g1-compile-cpu-onnxruntime",
        "gpu-tensorrt": "movies-g1-compile-gpu-tensorrt",
    }
    for target, name in names.items():
        job = await eventually(lambda n=name: kube.get(res.JOBS, NS, n), f"compile Job {name}")
        validate_object(job)
        pod = job["spec"]["template"]["spec"]
        assert pod["containers"][0]["args"][:2] == ["models:/movies/1", target]
        assert ("nodeSelector" in pod) == (target == "gpu-tensorrt")
        # What the Job controller and the kubelet report when the compile container succeeds.
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-x1", "namespace": NS, "labels": {"job-name": name}},
                "spec": {"containers": [{"name": "compile", "image": "recops"}]},
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {
                            "name": "compile",
                            "state": {
                                "terminated": {
                                    "exitCode": 0,
                                    "reason": "Completed",
                                    "message": engine_manifest(target, "movies"),
                                }
                            },
                        }
                    ],
                },
            }
        )
        await kube.patch(
            res.JOBS,
            NS,
            name,
            {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
            subresource="status",
        )

    async def succeeded() -> dict[str, Any] | None:
        s = await status_of(kube, res.TRAININGRUNS, RUN)
        return s if s.get("phase") == "Succeeded" else None

    status = await eventually(succeeded, "phase Succeeded")
    engines = {e["target"]: e for e in status["engines"]}
    assert set(engines) == set(names)
    assert engines["gpu-tensorrt"]["artifactUri"] == "/artifacts/ml/movies/1/gpu-tensorrt"
    assert engines["cpu-onnxruntime"]["parity"]["top10Overlap"] == 1.0
    assert condition(status, "Ready")["status"] == "True"


async def test_the_recmodel_serves_the_version_and_reports_ready(
    kube: KubeClient,
    operator: Any,
    eventually: Eventually,
) -> None:
    deployments = ["movies-1-cpu-onnxruntime", "movies-1-gpu-tensorrt"]
    for name in deployments:
        dep = await eventually(
            lambda n=name: kube.get(res.DEPLOYMENTS, NS, n), f"Deployment {name}"
        )
        validate_object(dep)
        svc = await eventually(lambda n=name: kube.get(res.SERVICES, NS, n), f"Service {name}")
        validate_object(svc)
    route = await eventually(lambda: kube.get(res.GRPCROUTES, NS, "movies"), "the GRPCRoute")
    validate_object(route)
    assert [b["weight"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]] == [
        100,
        100,
    ]
    monitor = await kube.get(res.SERVICEMONITORS, NS, "movies")
    assert monitor is not None
    validate_object(monitor)

    async def stable() -> dict[str, Any] | None:
        s = await status_of(kube, res.RECMODELS, "movies")
        return s if s.get("stableVersion") else None

    rm = await eventually(stable, "a stable version")
    assert rm["stableVersion"] == "1" and rm["weights"] == "1=100"
    assert condition(rm, "Serving")["reason"] == "DeploymentsNotReady"
    for name, replicas in zip(deployments, [2, 1], strict=True):
        await kube.patch(
            res.DEPLOYMENTS,
            NS,
            name,
            {
                "status": {
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                }
            },
            subresource="status",
        )

    async def ready() -> dict[str, Any] | None:
        s = await status_of(kube, res.RECMODELS, "movies")
        return s if condition(s, "Ready").get("status") == "True" else None

    rm = await eventually(ready, "RecModel Ready")
    assert rm["phase"] == "Serving"
    assert {e["readyReplicas"] for e in rm["endpoints"]} == {1, 2}
    assert rm["versions"][0]["engines"][0]["sha256"]


async def test_a_deleted_deployment_comes_back(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.delete(res.DEPLOYMENTS, NS, "movies-1-cpu-onnxruntime")
    assert await kube.get(res.DEPLOYMENTS, NS, "movies-1-cpu-onnxruntime") is None
    back = await eventually(
        lambda: kube.get(res.DEPLOYMENTS, NS, "movies-1-cpu-onnxruntime"), "the Deployment again"
    )
    assert back["spec"]["replicas"] == 2
    # Drift is repaired as well: a hand edit of the replica count is reverted.
    await kube.patch(res.DEPLOYMENTS, NS, "movies-1-cpu-onnxruntime", {"spec": {"replicas": 7}})

    async def reverted() -> bool:
        dep = await kube.get(res.DEPLOYMENTS, NS, "movies-1-cpu-onnxruntime")
        return bool(dep and dep["spec"]["replicas"] == 2)

    await eventually(reverted, "replicas back to 2")
    await kube.patch(
        res.DEPLOYMENTS,
        NS,
        "movies-1-cpu-onnxruntime",
        {"status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}},
        subresource="status",
    )

    async def serving() -> bool:
        return (await status_of(kube, res.RECMODELS, "movies")).get("phase") == "Serving"

    await eventually(serving, "phase Serving again")


async def test_kubectl_shows_the_recmodel_and_applies_the_examples(
    api: ApiServerEmulator,
    kube: KubeClient,
    repo_root: Path,
    tmp_path: Path,
    operator: Any,
    eventually: Eventually,
) -> None:
    config = api.write_kubeconfig(tmp_path / "kubeconfig", NS)

    def kubectl(*args: str) -> str:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    table = await asyncio.to_thread(kubectl, "get", "recmodels")
    print(f"\n$ kubectl get recmodels\n{table}")  # shown with `pytest -s`
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "STABLE", "CANDIDATE", "WEIGHTS", "READY", "AGE"]
    assert row.split()[:3] == ["movies", "Serving", "1"]
    runs = await asyncio.to_thread(kubectl, "get", "trainingruns")
    print(f"$ kubectl get trainingruns\n{runs}")
    assert "Succeeded" in runs and "candidate" in runs

    applied: list[dict[str, Any]] = []
    for path, docs in example_manifests(repo_root / "examples"):
        for doc in docs:
            declare(api, doc)
        out = await asyncio.to_thread(kubectl, "apply", "--validate=false", "-f", str(path))
        assert "created" in out or "configured" in out or "unchanged" in out
        applied += docs
    assert any(d["kind"] == "RecModel" for d in applied), "examples/ holds no RecModel"

    # The operator accepts every example spec (an invalid one would say InvalidSpec).
    for doc in applied:
        if doc["kind"] not in {"RecModel", "TrainingRun"}:
            continue
        resource = res.RECMODELS if doc["kind"] == "RecModel" else res.TRAININGRUNS
        meta = doc["metadata"]

        async def accepted(r: res.Resource = resource, m: dict[str, Any] = meta) -> Any:
            obj = await kube.get(r, m.get("namespace", "default"), m["name"])
            return condition((obj or {}).get("status") or {}, "SpecValid").get("status")

        verdict = await eventually(accepted, f"{doc['kind']} {meta['name']} reconciled")
        assert verdict == "True", f"example {doc['kind']} {meta['name']} was refused"


def example_manifests(folder: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Example files that hold Kubernetes objects (Argo CD's health-check fixtures aside)."""
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        if "testdata" in path.parts:
            continue
        docs = [
            d
            for d in yaml.safe_load_all(path.read_text())
            if isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
        ]
        if docs:
            found.append((path, docs))
    return found


def declare(api: ApiServerEmulator, doc: dict[str, Any]) -> None:
    """Serve a kind the examples use that the emulator does not know (e.g. Argo CD's)."""
    group_version, kind = doc["apiVersion"], doc["kind"]
    known = {info.kind for info in (api.resources[r] for r in api.resources)}
    if kind not in known:
        prefix = group_version if "/" in group_version else "v1"
        api.resources[f"{prefix}/{kind.lower()}s"] = kmock.ResourceInfo(
            kind=kind,
            namespaced=True,
            singular=kind.lower(),
            verbs={"get", "list", "watch", "create", "patch", "delete"},
        )


async def test_the_liveness_endpoint_answers(operator: Any) -> None:
    async with httpx.AsyncClient() as client:
        rsp = await client.get(operator.liveness_url)
    assert rsp.status_code == 200


async def test_every_call_the_operator_made_is_allowed_by_its_rbac(operator: Any) -> None:
    assert operator.calls, "the operator made no API calls"
    denied = sorted(c for c in operator.calls if not rbac.allows(*c))
    assert not denied, f"calls not covered by rbac.RULES: {denied}"
