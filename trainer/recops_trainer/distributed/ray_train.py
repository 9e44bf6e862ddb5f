"""Ray Train: the same ``fit`` loop on N workers of a ``TorchTrainer``.

Each worker trains on its shard of users; gradients are averaged with one all-reduce per
step (gloo on CPU, NCCL on GPU); rank 0 validates and its verdict is broadcast. Rank 0
reports a checkpoint every ``checkpointEvery`` epochs (and when validation improves), and
``FailureConfig`` restarts a lost worker group from the latest one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from recops_contracts.training import TrainingResources
from recops_trainer.config import TrainConfig
from recops_trainer.data.snapshot import read_snapshot
from recops_trainer.data.split import leave_one_out
from recops_trainer.model.network import SSEPT
from recops_trainer.tracking.mlflow_run import EpochMetricsLogger, epoch_metrics
from recops_trainer.training.hooks import STATE_FILE, write_state
from recops_trainer.training.loop import fit
from recops_trainer.training.state import Distributed, EpochResult, TrainState

# Fault injection for recovery tests and drills: the last worker exits at this epoch, once
# (the marker file is removed first, so the restarted worker group carries on).
FAULT_EPOCH_ENV = "RECOPS_FAULT_EPOCH"
FAULT_MARKER_ENV = "RECOPS_FAULT_MARKER"
MAX_FAILURES = 2
# Ray runs its workers at nice 15 by default, to spare its own daemons; in a private
# local Ray the workers are the job, and at 15 any other busy process starves them.
LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}


@contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[None]:
    """Connect to ``RAY_ADDRESS`` when set; otherwise start a private local Ray."""
    import ray

    if ray.is_initialized():
        yield
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        temp = tempfile.mkdtemp(prefix="recops-ray-")
        ray.init(
            _node_ip_address="127.0.0.1",
            _temp_dir=temp,
            include_dashboard=False,
            num_cpus=num_cpus,
            log_to_driver=True,
            configure_logging=False,
            _system_config=LOCAL_SYSTEM_CONFIG,
        )
    try:
        yield
    finally:
        ray.shutdown()


def ray_distributed(rank: int, world: int) -> Distributed:
    """This Ray Train worker's part in data-parallel training (``training.state.Distributed``)."""
    import ray.train.torch

    # The GPU Ray gave this worker (CUDA_VISIBLE_DEVICES is set per worker), or the CPU.
    device = ray.train.torch.get_device()
    if world == 1:
        return Distributed(device=device)
    import torch.distributed as tdist

    def sync_gradients(model: torch.nn.Module) -> None:
        params = list(model.parameters())
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
        tdist.all_reduce(flat)
        flat /= world
        offset = 0
        for p in params:
            assert p.grad is not None
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def broadcast(values: list[float]) -> list[float]:
        # NCCL (GPU workers) only moves tensors that live on the worker's GPU.
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        tdist.broadcast(tensor, src=0)
        return [float(v) for v in tensor.tolist()]

    return Distributed(rank, world, sync_gradients, broadcast, device)


def resumed_state() -> TrainState | None:
    """The train state of the checkpoint Ray Train restarted this worker group from, if any."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return TrainState.load(Path(folder) / STATE_FILE)


class RayReport:
    """Every worker reports every epoch; rank 0 attaches the checkpoint when one is due."""

    def __init__(self, every: int, rank: int, fault: dict[str, Any] | None, world: int) -> None:
        self.every = every
        self.rank = rank
        self.world = world
        self.fault = fault or {}

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        import ray.train

        metrics = self.metrics(result, state)
        due = result.epoch % self.every == 0 or result.improved or result.final
        if due and self.rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                write_state(state, Path(tmp))
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(metrics, checkpoint=checkpoint)
        else:
            ray.train.report(metrics)
        self._maybe_fail(result.epoch)

    def metrics(self, result: EpochResult, state: TrainState) -> dict[str, Any]:
        """What this worker reports for the epoch."""
        metrics: dict[str, Any] = {"epoch": result.epoch, **epoch_metrics(result)}
        metrics["best_val_ndcg_at_10"] = state.best_score if state.best_epoch else 0.0
        return metrics

    def _maybe_fail(self, epoch: int) -> None:
        marker = self.fault.get("marker")
        if self.fault.get("epoch") != epoch or self.rank != self.world - 1 or not marker:
            return
        if Path(marker).exists():
            Path(marker).unlink()
            os._exit(17)


def _worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    config = TrainConfig.model_validate(loop_config["config"])
    split = leave_one_out(read_snapshot(Path(loop_config["snapshot"])))
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    hooks: list[Any] = [
        RayReport(config.resources.checkpoint_every, rank, loop_config.get("fault"), world)
    ]
    mlflow = loop_config.get("mlflow")
    if mlflow and rank == 0:
        hooks.append(EpochMetricsLogger(mlflow["uri"], mlflow["run_id"]))
    fit(
        split,
        config.model,
        config.training,
        hooks=hooks,
        resume=resumed_state(),
        dist=ray_distributed(rank, world),
    )


def fault_from_env() -> dict[str, Any] | None:
    epoch, marker = os.environ.get(FAULT_EPOCH_ENV), os.environ.get(FAULT_MARKER_ENV)
    if epoch and marker:
        return {"epoch": int(epoch), "marker": marker}
    return None


def fit_on_ray(
    config: TrainConfig,
    snapshot_dir: Path,
    storage_path: str,
    *,
    name: str,
    resume_state: Path | None = None,
    mlflow_run: tuple[str, str] | None = None,
) -> TrainState:
    """Run ``fit`` under a ``TorchTrainer``; returns the final train state (with best model).

    ``mlflow_run`` (tracking URI, run id): the rank-0 worker logs each epoch's metrics to
    that run as it trains.
    """
    resources = config.resources
    per_worker: dict[str, float] = {"CPU": float(resources.cpus_per_worker)}
    loop_config = {
        "config": config.model_dump(mode="json", by_alias=True),
        "snapshot": str(Path(snapshot_dir).resolve()),
        "fault": fault_from_env(),
        "mlflow": {"uri": mlflow_run[0], "run_id": mlflow_run[1]} if mlflow_run else None,
    }
    state, _ = run_torch_trainer(
        _worker,
        loop_config,
        resources,
        per_worker,
        name=name,
        storage_path=storage_path,
        resume_state=resume_state,
    )
    return state


def run_torch_trainer(
    worker: Callable[[dict[str, Any]], None],
    loop_config: dict[str, Any],
    resources: TrainingResources,
    per_worker: dict[str, float],
    *,
    name: str,
    storage_path: str,
    resume_state: Path | None = None,
    datasets: dict[str, Any] | None = None,
    dataset_config: Any = None,
) -> tuple[TrainState, dict[str, Any]]:
    """``worker`` on ``resources.workers`` Ray Train workers (``per_worker`` CPUs each, plus
    the GPUs the resources ask for), retried on failure, resumed from ``resume_state``;
    (the final TrainState, the last metrics rank 0 reported)."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    if resources.gpus_per_worker:
        per_worker = per_worker | {"GPU": float(resources.gpus_per_worker)}
    resume_checkpoint = None
    if resume_state is not None:
        resume_checkpoint = ray.train.Checkpoint.from_directory(str(resume_state.parent))
    data: dict[str, Any] = {}
    if datasets is not None:
        data = {"datasets": datasets, "dataset_config": dataset_config}
    trainer = TorchTrainer(
        worker,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if resources.gpus_per_worker else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources.workers,
            use_gpu=resources.gpus_per_worker > 0,
            resources_per_worker=per_worker,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        resume_from_checkpoint=resume_checkpoint,
        **data,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run {name} finished without a checkpoint: {result.error}")
    with result.checkpoint.as_directory() as folder:
        return TrainState.load(Path(folder) / STATE_FILE), dict(result.metrics or {})


def latest_ray_state(storage: Path) -> Path | None:
    """The newest ``state.pt`` under a Ray Train storage folder."""
    states = sorted(Path(storage).glob("**/checkpoint_*/" + STATE_FILE), key=os.path.getmtime)
    return states[-1] if states else None
