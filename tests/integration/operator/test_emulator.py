"""The emulated API server behaves like a real one where the operator and Kopf rely on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
import pytest_asyncio

from recops_operator import resources as res
from recops_operator.clients.kubernetes import ConflictError, KubeClient, KubeConnection, KubeError
from recops_testkit.emulator import ApiServerEmulator

pytestmark = pytest.mark.asyncio(loop_scope="module")
CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "ml"},
    "data": {"a": "1"},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[KubeClient]:
    async with (
        ApiServerEmulator() as api,
        kmock.Server(api),
        KubeClient(KubeConnection(server=str(api.url))) as kube,
    ):
        yield kube


async def test_create_stamps_identity_and_refuses_duplicates(client: KubeClient) -> None:
    created = await client.create(CM)
    meta = created["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["generation"] == 1
    with pytest.raises(ConflictError):
        await client.create(CM)


async def test_writes_bump_resource_version_and_spec_changes_bump_generation(
    client: KubeClient,
) -> None:
    rm = {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "RecModel",
        "metadata": {"name": "m", "namespace": "ml"},
        # Valid, since the emulator admits custom objects against the CRD schema.
        "spec": {"dataset": {"format": "synthetic"}, "targets": [{"name": "cpu-openvino"}]},
    }
    first = await client.create(rm)
    status = await client.patch(
        res.RECMODELS, "ml", "m", {"status": {"phase": "Pending"}}, subresource="status"
    )
    assert int(status["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert status["metadata"]["generation"] == 1
    changed = await client.patch(
        res.RECMODELS, "ml", "m", {"spec": {"targets": [{"name": "cpu-openvino", "replicas": 2}]}}
    )
    assert changed["metadata"]["generation"] == 2


async def test_a_failed_json_patch_test_is_refused_with_422(client: KubeClient) -> None:
    current = await client.get(res.CONFIGMAPS, "ml", "c")
    assert current is not None
    session = client._session
    assert session is not None
    stale: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    async with session.patch(
        "api/v1/namespaces/ml/configmaps/c",
        json=stale,
        headers={"Content-Type": "application/json-patch+json"},
    ) as rsp:
        assert rsp.status == 422
    fresh = [{**stale[0], "value": current["metadata"]["resourceVersion"]}, stale[1]]
    async with session.patch(
        "api/v1/namespaces/ml/configmaps/c",
        json=fresh,
        headers={"Content-Type": "application/json-patch+json"},
    ) as rsp:
        assert rsp.status == 200
        assert (await rsp.json())["metadata"]["finalizers"] == ["x"]


async def test_a_merge_patch_from_an_old_version_is_refused_with_409(client: KubeClient) -> None:
    """Optimistic concurrency: a patch naming the resourceVersion it was computed from."""
    current = await client.get(res.CONFIGMAPS, "ml", "c")
    assert current is not None
    read = current["metadata"]["resourceVersion"]
    await client.patch(res.CONFIGMAPS, "ml", "c", {"data": {"a": "2"}})
    with pytest.raises(ConflictError):
        await client.patch(
            res.CONFIGMAPS, "ml", "c", {"metadata": {"resourceVersion": read}, "data": {"a": "3"}}
        )
    fresh = await client.get(res.CONFIGMAPS, "ml", "c")
    assert fresh is not None and fresh["data"]["a"] == "2"
    patch = {
        "metadata": {"resourceVersion": fresh["metadata"]["resourceVersion"]},
        "data": {"a": "3"},
    }
    assert (await client.patch(res.CONFIGMAPS, "ml", "c", patch))["data"]["a"] == "3"


async def test_missing_objects_and_kinds_are_404(client: KubeClient) -> None:
    assert await client.get(res.DEPLOYMENTS, "ml", "nope") is None
    assert await client.delete(res.DEPLOYMENTS, "ml", "nope") is False
    assert await client.serves(res.RAYJOBS)
    with pytest.raises(KubeError):
        await client.patch(res.SERVICES, "ml", "nope", {"spec": {}})
