"""Training from a prepared snapshot with Ray Data: each worker streams its own shard.

The ``TorchTrainer`` gets the prepared per-user Parquet rows as a Ray Data dataset
(``distributed.windows``: Ray Data tasks cut them into training windows); Ray Train splits
it with ``streaming_split`` (equal shares), and each worker runs the one training loop
(``training.loop.fit``) on ``StreamedData``: its batches come from
``get_dataset_shard("train").iter_torch_batches`` with a local shuffle buffer (no global
shuffle), so a worker's memory is bounded by the block and the shuffle buffer, not by the
data set, and rank 0 validates on a seeded user subsample read from the same Parquet
parts (``evaluation.prepared.PreparedUsers``).

An epoch is one pass over the users, each once (the in-memory sampler draws users with
replacement instead). Being the same loop, a streamed run has the in-memory run's
learning-rate decays (``training.lrDecays``) and time limit (``training.timeLimitMinutes``),
both off by default, and writes the same history rows.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from recops_contracts.training import DataPipeline, DatasetSource, ModelHyperparameters
from recops_trainer.config import TrainConfig
from recops_trainer.data.prepared.reader import read_manifest
from recops_trainer.data.sampler import Batch
from recops_trainer.distributed.ray_train import (
    RayReport,
    ray_distributed,
    resumed_state,
    run_torch_trainer,
)
from recops_trainer.distributed.windows import DATA_CPUS_PER_WORKER, training_dataset
from recops_trainer.evaluation.prepared import PreparedUsers
from recops_trainer.training.loop import fit
from recops_trainer.training.state import Distributed, EpochResult, TrainState

# Above this many interactions, auto picks the streaming pipeline: below it one process
# holds the sequences, their training windows and the sampler's exclusion keys (about
# 30 bytes an interaction) and is faster; above it that outgrows a training pod.
STREAMING_ABOVE = 20_000_000
# Per-worker local shuffle buffer, in rows.
SHUFFLE_BUFFER_ROWS = 4096
# Blocks in flight between the Ray Data tasks and the workers: with the block and the
# shuffle buffer, what bounds a worker's data memory, whatever the data set's size.
INGEST_OBJECT_STORE_BYTES = 256 << 20


def choose_pipeline(source: DatasetSource, interactions: int) -> tuple[DataPipeline, str]:
    """The pipeline to train with, and why (logged, and recorded in the run)."""
    if source.pipeline != DataPipeline.AUTO:
        return source.pipeline, f"dataset.pipeline is {source.pipeline.value}"
    if interactions > STREAMING_ABOVE:
        return DataPipeline.STREAMING, f"{interactions:,} interactions > {STREAMING_ABOVE:,}"
    return DataPipeline.IN_MEMORY, f"{interactions:,} interactions <= {STREAMING_ABOVE:,}"


def peak_rss_mb() -> float:
    """This process's peak resident memory (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class ShardBatches:
    """A worker's Ray Data shard: each of its training windows once an epoch."""

    def __init__(self, shard: Any, size: int) -> None:
        self.shard = shard
        self.size = size

    def epoch(self) -> Iterator[Batch]:
        for tensors in self.shard.iter_torch_batches(
            batch_size=self.size,
            dtypes=torch.int64,
            device="cpu",
            drop_last=True,
            local_shuffle_buffer_size=SHUFFLE_BUFFER_ROWS,
        ):
            yield Batch(*(tensors[k].numpy() for k in ("user", "seq", "pos", "neg")))

    def state(self) -> dict[str, Any]:
        # Windows draw fresh randomness on every pass: there is nothing to resume.
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None


class StreamedData:
    """A prepared folder streamed by Ray Data (the worker's ``TrainingData``); the network
    needs only the id ranges, never the sequences."""

    def __init__(self, folder: Path, num_users: int, num_items: int) -> None:
        self.folder = folder
        self.num_users = num_users
        self.num_items = num_items

    def batches(self, hp: ModelHyperparameters, dist: Distributed) -> ShardBatches:
        import ray.train

        # The global batch stays hp.batch_size whatever the worker count.
        return ShardBatches(
            ray.train.get_dataset_shard("train"), max(1, hp.batch_size // dist.world)
        )

    def validation_users(self) -> PreparedUsers:
        return PreparedUsers(self.folder)


class StreamReport(RayReport):
    """Ray Train's epoch report, with each worker's throughput and peak memory."""

    def metrics(self, result: EpochResult, state: TrainState) -> dict[str, Any]:
        metrics = super().metrics(result, state)
        metrics["worker_sequences"] = result.sequences
        metrics["worker_sequences_per_second"] = result.sequences / max(result.seconds, 1e-9)
        metrics["worker_peak_rss_mb"] = peak_rss_mb()
        return metrics


def _streaming_worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    config = TrainConfig.model_validate(loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    data = StreamedData(
        Path(loop_config["prepared"]), int(loop_config["users"]), int(loop_config["items"])
    )
    fit(
        data,
        config.model,
        config.training,
        hooks=[StreamReport(config.resources.checkpoint_every, rank, None, world)],
        resume=resumed_state(),
        dist=ray_distributed(rank, world),
    )


def _data_config() -> Any:
    """Ray Train's default ingest (a streaming split in equal shares), with the data in
    flight capped."""
    import ray.train

    options = ray.train.DataConfig.default_ingest_options()
    limits = options.resource_limits.copy(object_store_memory=INGEST_OBJECT_STORE_BYTES)
    options.resource_limits = limits
    return ray.train.DataConfig(datasets_to_split=["train"], execution_options=options)


def fit_streaming(
    config: TrainConfig,
    prepared: Path,
    storage_path: str,
    *,
    name: str,
    resume_state: Path | None = None,
) -> tuple[TrainState, dict[str, Any]]:
    """Train from the prepared folder under a ``TorchTrainer``; (final TrainState, the last
    epoch's metrics as rank 0 reported them)."""
    manifest = read_manifest(prepared)
    num_users, num_items = int(manifest["stats"]["users"]), int(manifest["stats"]["items"])
    resources = config.resources
    cpus = max(DATA_CPUS_PER_WORKER, resources.cpus_per_worker - DATA_CPUS_PER_WORKER)
    loop_config = {
        "config": config.model_dump(mode="json", by_alias=True),
        "prepared": str(Path(prepared).resolve()),
        "users": num_users,
        "items": num_items,
    }
    return run_torch_trainer(
        _streaming_worker,
        loop_config,
        resources,
        {"CPU": cpus},
        name=name,
        storage_path=storage_path,
        resume_state=resume_state,
        datasets={"train": training_dataset(prepared, config, num_users, num_items)},
        dataset_config=_data_config(),
    )
