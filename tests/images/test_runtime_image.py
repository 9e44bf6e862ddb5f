"""The runtime image serves an engine as the rendered serving Deployment runs it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from recops_cli.quickstart.processes import free_port
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pb_grpc
from recops_testkit.containers import started
from recops_testkit.pods import PodVolumes, container, pod_spec, run_args
from recops_testkit.prerequisites import REPO_ROOT
from recops_testkit.serve_engines import build_real_engines, item_id, user_id

EXAMPLE = REPO_ROOT / "examples" / "movielens" / "recmodel.yaml"
TARGET = "cpu-onnxruntime"


def ask(port: int, deadline: float) -> pb.RecommendResponse:
    """Recommend over gRPC from the host, retried until the server is up."""
    request = pb.RecommendRequest(user_id=user_id(1), history=[item_id(2), item_id(3)], k=5)
    while True:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply: pb.RecommendResponse = pb_grpc.RecommenderStub(channel).Recommend(  # type: ignore[no-untyped-call]
                    request, timeout=5
                )
                return reply
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_runtime_image_answers_a_recommend_as_its_pod(
    builder: str,
    build_image: Callable[[str], str],
    render: Callable[..., list[dict[str, Any]]],
    pod_dir: Path,
    termination_log: Callable[[str], Path],
    timed: Callable[[str, float], None],
) -> None:
    image = build_image("runtime-cpu")
    deployment = next(
        o
        for o in render(EXAMPLE)
        if o["kind"] == "Deployment" and o["metadata"]["labels"]["recops.io/target"] == TARGET
    )
    spec = pod_spec(deployment)
    # The engine a compile Job would have written to the artifacts claim (built on the host).
    claim = pod_dir / "artifacts"
    engine = build_real_engines(pod_dir / "engines")["v1"]
    folder = next(a for a in container(spec)["command"] if a.startswith("1=")).split("=", 1)[1]
    shutil.copytree(engine, claim / Path(folder).relative_to("/artifacts"))
    ports = {p["containerPort"]: free_port() for p in container(spec)["ports"]}
    args = run_args(
        spec,
        image,
        PodVolumes(claims={"recops-artifacts": claim}),
        termination_log("runtime"),
        ports=ports,
        podman=builder == "podman",
    )
    start = time.monotonic()
    with started(builder, args) as pod:
        try:
            reply = ask(ports[8500], deadline=start + 120)
        except grpc.RpcError as exc:
            raise AssertionError(f"no answer: {exc}\n{pod.logs()[-4000:]}") from exc
        timed("runtime: start to first Recommend", time.monotonic() - start)
        assert len(reply.items) == 5
        assert (reply.model_version, reply.target) == ("1", TARGET)
        assert not reply.fallback_reason
