"""Training from a prepared snapshot with Ray Data: each worker streams its own shard.

The ``TorchTrainer`` gets the prepared per-user Parquet rows as a Ray Data dataset;
Ray Train splits it with ``streaming_split`` (equal shares), and each worker reads its
shard through ``get_dataset_shard("train").iter_torch_batches`` with a local shuffle
buffer (no global shuffle). Ray Data tasks turn each block of user rows into training
windows (``window_batch``: the user's last ``maxlen + 1`` training items, SSE
replacements, sampled negatives), so a worker's memory is bounded by the block and the
shuffle buffer, not by the data set; no process ever holds every sequence.

An epoch is one pass over the users, each once (the in-memory sampler draws users with
replacement instead); gradients are averaged across workers each step, and rank 0
validates on a seeded user subsample read from the same Parquet parts
(``scale_eval``). Windows draw fresh randomness on every pass, so unlike the in-memory
path a streaming run is not bit-for-bit reproducible.
"""

from __future__ import annotations

import functools
import logging
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from recops_contracts.training import DataPipeline, DatasetSource, EvaluationProtocol
from recops_trainer.config import TrainConfig
from recops_trainer.evaluate import Stage
from recops_trainer.hooks import STATE_FILE, write_state
from recops_trainer.prepared import part_files, read_manifest
from recops_trainer.sampler import Batch, TrainSampler
from recops_trainer.split import Split

log = logging.getLogger("recops.train")

Ints = npt.NDArray[np.int64]

# Above this many interactions, auto picks the streaming pipeline: below it one process
# holds the sequences, their training windows and the sampler's exclusion keys (about
# 30 bytes an interaction) and is faster; above it that outgrows a training pod.
STREAMING_ABOVE = 20_000_000
# Rows (users) per Ray Data windowing task, and per-worker local shuffle buffer in rows.
WINDOW_BATCH_ROWS = 1024
SHUFFLE_BUFFER_ROWS = 4096
# Ray Data's reading and windowing tasks run beside the training workers: each worker
# leaves this many of its CPUs to them (as a Ray resource), and each task asks for
# DATA_TASK_CPUS, so the data keeps flowing while every worker trains.
DATA_CPUS_PER_WORKER = 0.5
DATA_TASK_CPUS = 0.25
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


def _empty_split(num_users: int, num_items: int) -> Split:
    empty = np.zeros(0, np.int64)
    return Split([], empty, empty, num_users, num_items)


def window_batch(
    batch: dict[str, Any],
    *,
    maxlen: int,
    num_users: int,
    num_items: int,
    sse_user: float,
    sse_item: float,
    negatives: int,
    seed: int,
) -> dict[str, Ints]:
    """Training windows of a block of user rows (``user``, ``items``): the Ray Data step.

    Leave-one-out as in the in-memory split: a user with 3 or more items trains on all but
    the last two; users left with fewer than 2 training items have nothing to learn from
    and are dropped. The rows' own items are the exclusions for their negatives.
    """
    users = np.asarray(batch["user"], np.int64)
    sequences = [np.asarray(s, np.int64) for s in batch["items"]]
    train = [s[:-2] if len(s) >= 3 else s for s in sequences]
    rows = np.flatnonzero([len(t) > 1 for t in train])
    shape = (0, maxlen)
    if len(rows) == 0:
        empty = np.zeros(shape, np.int64)
        return {
            "user": np.zeros(0, np.int64),
            "seq": empty,
            "pos": empty,
            "neg": np.zeros((*shape, negatives or 1), np.int64),
        }
    rng_seed = [seed, int(users[0]), time.time_ns() & 0xFFFFFFFF]
    local = Split(
        [train[r] for r in rows],
        np.zeros(len(rows), np.int64),
        np.zeros(len(rows), np.int64),
        len(rows),
        num_items,
    )
    # User SSE needs the whole id range: it is applied here, not by the block's sampler.
    sampler = TrainSampler(
        local,
        maxlen,
        sse_item=sse_item,
        negatives=negatives,
        seed=int(np.random.SeedSequence(rng_seed).generate_state(1)[0]),
    )
    drawn = sampler.rows(np.arange(1, len(rows) + 1, dtype=np.int64))
    inputs = users[rows]
    if sse_user > 0:
        swap = sampler.rng.random(len(rows)) < sse_user
        inputs = np.where(swap, sampler.rng.integers(1, num_users + 1, size=len(rows)), inputs)
    neg = drawn.neg if negatives else np.zeros((len(rows), maxlen, 1), np.int64)
    return {"user": inputs.astype(np.int64), "seq": drawn.seq, "pos": drawn.pos, "neg": neg}


def training_dataset(folder: Path, config: TrainConfig, num_users: int, num_items: int) -> Any:
    """The lazy Ray Data pipeline: Parquet parts -> per-user training windows."""
    import ray.data

    hp = config.model
    sse_user, sse_item = hp.effective_sse
    windows = functools.partial(
        window_batch,
        maxlen=hp.maxlen,
        num_users=num_users,
        num_items=num_items,
        sse_user=sse_user,
        sse_item=sse_item,
        negatives=hp.negatives if hp.loss.samples_negatives else 0,
        seed=hp.seed,
    )
    paths = [str(p) for p in part_files(folder)]
    # The projection is pushed down into the Parquet reader: timestamps are never read.
    rows = ray.data.read_parquet(paths, num_cpus=DATA_TASK_CPUS).select_columns(["user", "items"])
    return rows.map_batches(
        windows, batch_format="numpy", batch_size=WINDOW_BATCH_ROWS, num_cpus=DATA_TASK_CPUS
    )


def _validate(
    folder: Path, model: Any, config: TrainConfig, num_users: int
) -> dict[str, dict[str, Any]]:
    from recops_trainer.scale_eval import evaluate_prepared
    from recops_trainer.train import model_scorer

    return evaluate_prepared(
        folder,
        model_scorer(model),
        maxlen=config.model.maxlen,
        stage=Stage.VALID,
        protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
        users=min(config.training.eval_users, num_users),
        seed=config.model.seed,
    )


def _streaming_worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    from recops_trainer.ray_train import _distributed
    from recops_trainer.train import (
        PHASES,
        EpochResult,
        TrainState,
        _accumulate_gradients,
        _on_cpu,
        build_model,
        training_device,
    )

    config = TrainConfig.model_validate(loop_config["config"])
    hp, settings = config.model, config.training
    folder = Path(loop_config["prepared"])
    num_users, num_items = int(loop_config["users"]), int(loop_config["items"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    dist = _distributed(rank, world)
    device = dist.device or training_device()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(hp.seed)
    # The network needs only the id ranges, not the sequences.
    model = build_model(_empty_split(num_users, num_items), hp).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.98))
    state = TrainState(monitor=settings.monitor.value)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as saved:
            state = TrainState.load(Path(saved) / STATE_FILE)
        model.load_state_dict(state.model_state)
        optimizer.load_state_dict(state.optimizer_state)
    local_batch = max(1, hp.batch_size // world)
    shard = ray.train.get_dataset_shard("train")
    model.train()
    while state.epoch < hp.epochs and not state.stopped_early:
        started = time.perf_counter()
        phases = dict.fromkeys(PHASES, 0.0)
        total, steps, sequences = 0.0, 0, 0
        tick = time.perf_counter()
        for tensors in shard.iter_torch_batches(
            batch_size=local_batch,
            dtypes=torch.int64,
            device="cpu",
            drop_last=True,
            local_shuffle_buffer_size=SHUFFLE_BUFFER_ROWS,
        ):
            batch = Batch(*(tensors[k].numpy() for k in ("user", "seq", "pos", "neg")))
            phases["sample"] += time.perf_counter() - tick
            optimizer.zero_grad(set_to_none=True)
            total += _accumulate_gradients(
                model, batch, hp, num_items, device, phases, settings.precision
            )
            tick = time.perf_counter()
            if dist.sync_gradients is not None:
                dist.sync_gradients(model)
            optimizer.step()
            phases["optimizer"] += time.perf_counter() - tick
            steps += 1
            sequences += len(batch.users)
            tick = time.perf_counter()
        state.epoch += 1
        seconds = time.perf_counter() - started
        result = EpochResult(
            state.epoch,
            total / max(1, steps),
            seconds,
            phases={k: round(v, 3) for k, v in phases.items()},
        )
        last = state.epoch >= hp.epochs
        if state.epoch % settings.eval_every == 0 or last:
            score = -math.inf
            if dist.is_main:
                result.validation = _validate(folder, model, config, num_users)
                model.train()
                score = float(result.monitored(settings.monitor) or 0.0)
            if dist.broadcast is not None:
                score = dist.broadcast([score])[0]
            result.improved = score > state.best_score
            if result.improved:
                state.best_score, state.best_epoch = score, result.epoch
                state.best_model_state = _on_cpu(model.state_dict())
                state.bad_evals = 0
            else:
                state.bad_evals += 1
                state.stopped_early = state.bad_evals >= settings.patience
        result.final = last or state.stopped_early
        state.model_state = _on_cpu(model.state_dict())
        state.optimizer_state = optimizer.state_dict()
        state.history.append(
            {
                "epoch": result.epoch,
                "loss": result.loss,
                "seconds": seconds,
                "phases": result.phases,
                "sequences": sequences * world,
            }
            | ({"val": result.validation} if result.validation else {})
        )
        _report(result, state, rank, sequences, config.resources.checkpoint_every)


def _report(result: Any, state: Any, rank: int, sequences: int, every: int) -> None:
    import ray.train

    from recops_trainer.tracking import epoch_metrics

    metrics: dict[str, Any] = {"epoch": result.epoch, **epoch_metrics(result)}
    metrics["best_val_ndcg_at_10"] = state.best_score if state.best_epoch else 0.0
    metrics["worker_sequences"] = sequences
    metrics["worker_sequences_per_second"] = sequences / max(result.seconds, 1e-9)
    metrics["worker_peak_rss_mb"] = peak_rss_mb()
    due = result.epoch % every == 0 or result.improved or result.final
    if due and rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            write_state(state, Path(tmp))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
    else:
        ray.train.report(metrics)


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
) -> tuple[Any, dict[str, Any]]:
    """Train from the prepared folder under a ``TorchTrainer``; (final TrainState, the last
    epoch's metrics as rank 0 reported them)."""
    from recops_trainer.ray_train import run_torch_trainer

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
