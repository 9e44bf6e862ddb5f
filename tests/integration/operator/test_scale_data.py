"""A RecModel on MovieLens-1B: the operator renders a RayJob whose head prepares the data
once onto a shared volume and whose workers stream their shards of the prepared Parquet
snapshot from it; a large data set on several workers without shared storage is refused,
naming the field."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient
from recops_testkit.manifests import custom_object
from recops_testkit.schemas import validate_object

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
Eventually = Callable[..., Awaitable[Any]]
NS = "ml"
MOUNT = "/var/lib/recops/prepared"


def recmodel(name: str, dataset: dict[str, Any], workers: int) -> dict[str, Any]:
    spec = {
        "dataset": dataset,
        "training": {
            "workers": workers,
            "cpusPerWorker": 4,
            "memory": "16Gi",
            "storageClaim": "training-runs",
        },
        "mlflow": {"trackingUri": "http://127.0.0.1:9"},
        "targets": [{"name": "cpu-onnxruntime"}],
    }
    return custom_object("RecModel", name, NS, spec)


def _pods(rayjob: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"] for g in groups]


async def test_movielens_1b_workers_read_the_prepared_snapshot_from_the_shared_claim(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    dataset = {
        "format": "movielens-1b",
        "uri": f"{MOUNT}/ml-20mx16x32.tar",
        "preparedClaim": "movielens-prepared",
    }
    model = recmodel("ml1b", dataset, workers=4)
    validate_object(model)  # the CRD takes the new format and fields
    await kube.create(model)
    rayjob = await eventually(lambda: kube.get(res.RAYJOBS, NS, "ml1b-g1-a1"), "the RayJob")
    validate_object(rayjob)
    assert rayjob["spec"]["entrypoint"].startswith("recops train --config /etc/recops/train.json")
    workers = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] == 4
    for pod in _pods(rayjob):
        claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
        assert claims["prepared"] == {"claimName": "movielens-prepared"}
        container = pod["containers"][0]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        # Writable in the head (it prepares) and in the workers (Ray Data tasks run there).
        assert mounts["prepared"]["mountPath"] == MOUNT
        assert not mounts["prepared"].get("readOnly")
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["RECOPS_DATA_DIR"] == f"{MOUNT}/cache"
    config_map = await kube.get(res.CONFIGMAPS, NS, "ml1b-g1-config")
    assert config_map is not None
    validate_object(config_map)
    train = json.loads(config_map["data"]["train.json"])
    assert train["dataset"]["format"] == "movielens-1b"
    assert train["dataset"]["preparedDir"] == f"{MOUNT}/{NS}/ml1b"
    assert train["resources"]["workers"] == 4


async def test_a_large_set_on_several_workers_without_shared_storage_is_refused(
    kube: KubeClient, operator: Any, eventually: Eventually
) -> None:
    await kube.create(recmodel("ml25m", {"format": "movielens-25m"}, workers=2))

    async def refused() -> dict[str, Any] | None:
        obj = await kube.get(res.TRAININGRUNS, NS, "ml25m-g1")
        status = (obj or {}).get("status") or {}
        return status if "preparedClaim" in (status.get("message") or "") else None

    status = await eventually(refused, "the TrainingRun refused")
    assert "spec.dataset.preparedClaim" in status["message"]
    assert "pipeline: in-memory" in status["message"]
    assert await kube.get(res.RAYJOBS, NS, "ml25m-g1-a1") is None
