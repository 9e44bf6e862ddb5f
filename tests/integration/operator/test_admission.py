"""Real kubectl against the emulated API server admitting as a real one: malformed RecModels
are refused at the door with the server's own wording (schema and CEL), an unknown field is
refused under strict validation and otherwise pruned with a warning, and `kubectl explain`
and `kubectl get recops` work."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import pytest_asyncio
import yaml

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient, KubeConnection, KubeError
from recops_testkit.emulator import ApiServerEmulator

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]
NS = "ml"
Kubectl = Callable[..., "asyncio.Future[subprocess.CompletedProcess[str]]"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServerEmulator]:
    async with ApiServerEmulator(admission=True) as emulator, kmock.Server(emulator):
        yield emulator


@pytest.fixture(scope="module")
def kubeconfig(api: ApiServerEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", NS)


@pytest.fixture(scope="module")
def movies(repo_root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (repo_root / "examples" / "movielens" / "recmodel.yaml").read_text(encoding="utf-8")
    )
    doc["metadata"]["namespace"] = NS
    return doc


async def kubectl(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "--kubeconfig", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def malformed(doc: dict[str, Any], name: str, change: Callable[[dict[str, Any]], Any]) -> str:
    out = copy.deepcopy(doc)
    out["metadata"]["name"] = name
    change(out["spec"])
    return json.dumps(out)


def _gpu_without_gpus(spec: dict[str, Any]) -> None:
    spec["targets"][1] = {"name": "gpu-tensorrt"}


# (name, change to the example's spec, what kubectl prints: the API server's own wording)
REFUSED: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("no-dataset", lambda s: s.pop("dataset"), "spec.dataset: Required value"),
    (
        "maxlen-text",
        lambda s: s["model"].update(maxlen="long"),
        'spec.model.maxlen: Invalid value: "string": spec.model.maxlen in body must be of type '
        'integer: "string"',
    ),
    (
        "targets-object",
        lambda s: s.update(targets={"name": "cpu-openvino"}),
        'spec.targets: Invalid value: "object": spec.targets in body must be of type array',
    ),
    (
        "negative-replicas",
        lambda s: s["targets"][0].update(replicas=-1),
        "spec.targets[0].replicas: Invalid value: -1: spec.targets[0].replicas in body should "
        "be greater than or equal to 0",
    ),
    (
        "unknown-target",
        lambda s: s["targets"][0].update(name="tpu-jax"),
        'spec.targets[0].name: Unsupported value: "tpu-jax": supported values: "cpu-torch"',
    ),
    (
        "duplicate-targets",
        lambda s: s["targets"][1].update(name="cpu-onnxruntime"),
        'spec.targets: Invalid value: "array": each target may appear once',
    ),
    (
        "gpu-without-gpus",
        _gpu_without_gpus,
        'spec.targets[1]: Invalid value: "object": a gpu-* target runs on a GPU: set '
        "resources.gpu to at least 1",
    ),
]


@pytest.mark.parametrize(("name", "change", "message"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_kubectl_apply_of_a_malformed_recmodel_is_refused_naming_the_field(
    kubeconfig: Path,
    kube: KubeClient,
    movies: dict[str, Any],
    name: str,
    change: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    done = await kubectl(kubeconfig, "apply", "-f", "-", stdin=malformed(movies, name, change))
    assert done.returncode != 0, done.stdout
    assert f'The RecModel "{name}" is invalid' in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert await kube.get(res.RECMODELS, NS, name) is None


async def test_an_unknown_field_is_refused_under_strict_validation_else_pruned_with_a_warning(
    kubeconfig: Path, kube: KubeClient, movies: dict[str, Any]
) -> None:
    doc = malformed(movies, "typo", lambda s: s["targets"][0].update(replicaz=3))
    strict = await kubectl(kubeconfig, "apply", "-f", "-", stdin=doc)
    assert strict.returncode != 0
    assert 'strict decoding error: unknown field "spec.targets[0].replicaz"' in strict.stderr
    assert await kube.get(res.RECMODELS, NS, "typo") is None

    warned = await kubectl(kubeconfig, "apply", "--validate=warn", "-f", "-", stdin=doc)
    assert warned.returncode == 0, warned.stderr
    assert 'Warning: unknown field "spec.targets[0].replicaz"' in warned.stderr
    stored = await kube.get(res.RECMODELS, NS, "typo")
    assert stored is not None
    assert "replicaz" not in stored["spec"]["targets"][0]


async def test_what_the_schema_cannot_say_is_admitted_for_the_operator_to_refuse(
    kubeconfig: Path, kube: KubeClient, movies: dict[str, Any]
) -> None:
    # numHeads must divide the item dimension: a cross-field rule only the operator checks.
    doc = malformed(movies, "heads", lambda s: s["model"].update(numHeads=3))
    done = await kubectl(kubeconfig, "apply", "-f", "-", stdin=doc)
    assert done.returncode == 0, done.stderr
    assert "recmodel.recops.io/heads created" in done.stdout


async def test_admission_applies_defaults_and_keeps_status_off_the_main_endpoint(
    api: ApiServerEmulator, kube: KubeClient, movies: dict[str, Any]
) -> None:
    doc = json.loads(malformed(movies, "defaults", lambda s: s["targets"][0].pop("replicas")))
    doc["status"] = {"phase": "Serving"}
    created = await kube.create(doc)
    assert created["spec"]["targets"][0]["replicas"] == 1
    assert "status" not in created
    status = await kube.patch(
        res.RECMODELS, NS, "defaults", {"status": {"phase": "Training", "bogus": 1}}, "status"
    )
    assert status["status"] == {"phase": "Training"}
    with pytest.raises(KubeError) as refused:
        await kube.patch(res.RECMODELS, NS, "defaults", {"spec": {"targets": []}})
    assert refused.value.status == 422
    assert "spec.targets in body should have at least 1 items" in str(refused.value)


async def test_kubectl_explain_reads_the_crd_schema(kubeconfig: Path) -> None:
    done = await kubectl(kubeconfig, "explain", "recmodel.spec.targets")
    assert done.returncode == 0, done.stderr
    assert "KIND:       RecModel" in done.stdout
    assert "replicas" in done.stdout and "<integer>" in done.stdout


async def test_kubectl_get_the_recops_category_lists_every_kind(
    kubeconfig: Path, kube: KubeClient, movies: dict[str, Any]
) -> None:
    run = {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "heads-manual", "namespace": NS},
        "spec": {"recModel": "heads"},
    }
    await kube.create(run)
    done = await kubectl(kubeconfig, "get", "recops")
    assert done.returncode == 0, done.stderr
    assert "recmodel.recops.io/heads" in done.stdout
    assert "trainingrun.recops.io/heads-manual" in done.stdout


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kube(api: ApiServerEmulator) -> AsyncIterator[KubeClient]:
    async with KubeClient(KubeConnection(server=str(api.url))) as client:
        yield client
