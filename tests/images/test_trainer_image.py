"""The trainer image trains a small run and compiles it, as the rendered Jobs run it: the
training Job (the batch Job the operator renders without KubeRay) registers a model in a
real MLflow server on loopback, then the compile Job fetches it and compiles it from the
run's own snapshot on the shared claim."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recops_cli.quickstart.processes import free_port
from recops_testkit.containers import run_to_end
from recops_testkit.pods import PodVolumes, container, pod_spec, run_args
from recops_testkit.processes import start_mlflow_server, stop, wait_until_ready

Obj = dict[str, Any]
NAME = "tiny"
CLAIM = "recops-artifacts"


def recmodel(tracking_uri: str) -> str:
    """A RecModel small enough to train in a minute on the synthetic interactions."""
    return f"""
apiVersion: recops.io/v1alpha1
kind: RecModel
metadata: {{name: {NAME}, namespace: recops}}
spec:
  dataset: {{format: synthetic}}
  model: {{architecture: sse-pt, maxlen: 20, itemDim: 16, userDim: 8, numBlocks: 1,
          numHeads: 1, epochs: 1, batchSize: 128}}
  training: {{workers: 1, cpusPerWorker: 1, memory: 2Gi, storageClaim: {CLAIM}}}
  gate: {{metric: ndcg@10, protocol: sampled, minimum: 0.0}}
  targets: [{{name: cpu-onnxruntime}}]
  mlflow: {{trackingUri: "{tracking_uri}"}}
"""


@pytest.fixture
def mlflow_server(pod_dir: Path) -> Iterator[str]:
    """MLflow on 127.0.0.1 that stores artifacts itself: the containers upload over HTTP,
    as pods do, instead of writing to a folder of the host."""
    root = pod_dir / "mlflow"
    root.mkdir()
    port = free_port()
    proc = start_mlflow_server(root, port, serve_artifacts=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(proc, f"{url}/health", "mlflow server", root / "server.log")
        yield url
    finally:
        stop(proc)


def by_name(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_trainer_image_trains_and_compiles_as_its_jobs(
    builder: str,
    build_image: Callable[[str], str],
    render: Callable[..., list[Obj]],
    pod_dir: Path,
    mlflow_server: str,
    termination_log: Callable[[str], Path],
    timed: Callable[[str, float], None],
) -> None:
    image = build_image("trainer")
    source = pod_dir / "recmodel.yaml"
    source.write_text(recmodel(mlflow_server))
    objects = render(source, "--no-kuberay")
    config = by_name(objects, "ConfigMap", f"{NAME}-g1-config")
    config_dir = pod_dir / "config"
    config_dir.mkdir()
    for key, text in config["data"].items():
        (config_dir / key).write_text(text)
    claim = pod_dir / "artifacts"
    claim.mkdir(mode=0o777)
    claim.chmod(0o777)
    volumes = PodVolumes(
        claims={CLAIM: claim}, config_maps={config["metadata"]["name"]: config_dir}
    )
    podman = builder == "podman"

    train = pod_spec(by_name(objects, "Job", f"{NAME}-g1-a1"))
    start = time.monotonic()
    args = run_args(train, image, volumes, termination_log("train"), podman=podman)
    result = run_to_end(builder, args, timeout=600)
    timed("trainer: training Job", time.monotonic() - start)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    compile_job = by_name(objects, "Job", f"{NAME}-g1-compile-cpu-onnxruntime")
    spec = pod_spec(compile_job)
    out = Path(container(spec)["args"][2])
    log = termination_log("compile")
    start = time.monotonic()
    result = run_to_end(
        builder,
        run_args(spec, image, volumes, log, podman=podman),
        timeout=600,
    )
    timed("trainer: compile Job", time.monotonic() - start)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    manifest = json.loads((claim / out.relative_to("/artifacts") / "manifest.json").read_text())
    # The Job reports the manifest as its termination message, as a kubelet would read it.
    assert json.loads(log.read_text()) == manifest
    assert manifest["target"] == "cpu-onnxruntime"
