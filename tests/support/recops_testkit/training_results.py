"""What the trainer and a compile Job leave behind, for tests that drive a TrainingRun
through its phases without running either: the MLflow run `recops train` logs, and the
compile container's termination message (the engine's manifest)."""

from __future__ import annotations

import json
from typing import Any

from recops_operator import resources as res
from recops_operator.clients.kubernetes import KubeClient


def log_training_result(tracking_uri: str, training_run: str, model: str) -> str:
    """A finished MLflow run under the contract's tags that passed the gate as version 1
    of ``model``; returns its run id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment(f"recops-{model}-{training_run.replace('/', '-')}")
    run = client.create_run(experiment, tags={"recops.training_run": training_run})
    run_id: str = run.info.run_id
    for epoch, ndcg in enumerate([0.41, 0.55, 0.6], start=1):
        client.log_metric(run_id, "val_ndcg_at_10", ndcg, step=epoch)
    client.log_metric(run_id, "test_sampled_ndcg_at_10", 0.612)
    for key, tag in {
        "recops.dataset_hash": "sha256:" + "12" * 32,
        "recops.protocol": "sampled",
        "recops.registered_model": model,
        "recops.model_version": "1",
        "recops.gate": "candidate",
        "recops.gate_reason": "ndcg@10 0.612 >= minimum 0.0",
    }.items():
        client.set_tag(run_id, key, tag)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def log_epochs(tracking_uri: str, training_run: str, ndcg: list[float]) -> str:
    """A training still running, after ``len(ndcg)`` epochs: what `recops train` has logged
    by then (the validation metric per epoch, no verdict yet); returns its run id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment(f"recops-running-{training_run.replace('/', '-')}")
    run_id: str = client.create_run(
        experiment, tags={"recops.training_run": training_run}
    ).info.run_id
    for epoch, value in enumerate(ndcg, start=1):  # the trainer counts epochs from 1
        client.log_metric(run_id, "val_ndcg_at_10", value, step=epoch)
        client.log_metric(run_id, "loss", 2.0 / epoch, step=epoch)
    return run_id


def engine_manifest(target: str, model: str) -> str:
    """The manifest.json `recops compile` writes, as its termination message."""
    manifest: dict[str, Any] = {
        "format_version": 1,
        "target": target,
        "precision": "fp32",
        "opset": 18,
        "input_spec": {"maxlen": 200, "num_items": 3416, "num_users": 6040},
        "model_name": model,
        "model_version": "1",
        "model_sha256": "ab" * 32,
        "artifact": "model.onnx",
        "files": {"model.onnx": "cd" * 32},
        "parity": {
            "users": 512,
            "max_abs_diff": 2e-6,
            "top10_overlap": 1.0,
            "ndcg10_reference": 0.61,
            "ndcg10_engine": 0.61,
            "ndcg10_delta": 0.0,
        },
        "latency": [{"batch": 1, "p50_ms": 0.4, "p99_ms": 0.9, "users_per_second": 2300.0}],
    }
    return json.dumps(manifest)


async def finish_compile(kube: KubeClient, namespace: str, job: str, manifest: str) -> None:
    """What the Job controller and the kubelet report when the compile container succeeds."""
    terminated = {"exitCode": 0, "reason": "Completed", "message": manifest}
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{job}-x1", "namespace": namespace, "labels": {"job-name": job}},
            "spec": {"containers": [{"name": "compile", "image": "recops"}]},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [{"name": "compile", "state": {"terminated": terminated}}],
            },
        }
    )
    await kube.patch(
        res.JOBS,
        namespace,
        job,
        {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
        subresource="status",
    )
