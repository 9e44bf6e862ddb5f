"""`recops train` and the one training path under it: snapshot, train (here, on Ray Train,
or streamed from a prepared folder), test, track, register, gate."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recops_contracts.tracking import (
    TAG_BACKEND,
    TAG_DATASET_HASH,
    TAG_OUTPUT,
    TAG_PROTOCOL,
    TAG_SYNTHETIC,
)
from recops_contracts.training import SCALE_FORMATS
from recops_contracts.training_summary import PipelineChoice, TrainingSummary
from recops_trainer.config import TrainConfig
from recops_trainer.data.snapshot import Snapshot, write_snapshot
from recops_trainer.data.sources import load_source
from recops_trainer.data.split import Split, leave_one_out
from recops_trainer.model.network import SSEPT
from recops_trainer.runs.outcome import (
    Outcome,
    finish,
    id_maps,
    lineage_tags,
    log_epoch,
    log_snapshot,
    register,
)
from recops_trainer.runs.scale_data import ScaleData, load_scale_data, train_streaming
from recops_trainer.training.hooks import (
    CHECKPOINT_DIR,
    STATE_FILE,
    BestModelHook,
    CheckpointHook,
    ProgressHook,
)
from recops_trainer.training.loop import fit
from recops_trainer.training.state import Hook, TrainState
from recops_trainer.training.steps import build_model

log = logging.getLogger("recops.train")

BACKENDS = ("auto", "local", "ray")


def output_dir(config: TrainConfig, output: Path | None, run_name: str | None) -> Path:
    if output is not None:
        return Path(output)
    if config.output:
        return Path(config.output)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / (run_name or f"train-{stamp}")


def use_ray(config: TrainConfig, backend: str) -> bool:
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return bool(os.environ.get("RAY_ADDRESS")) or config.resources.workers > 1
    return backend == "ray"


def resolve_resume(resume: str, config: TrainConfig) -> tuple[Path, Path]:
    """(output folder, state file) of a run to continue: a folder, or an MLflow run id."""
    folder = Path(resume)
    if not folder.is_dir():
        from mlflow import MlflowClient

        from recops_trainer.tracking.mlflow_run import tracking_uri

        run = MlflowClient(tracking_uri(config.mlflow)).get_run(resume)
        folder = Path(run.data.tags.get(TAG_OUTPUT, ""))
        if not folder.is_dir():
            raise FileNotFoundError(f"--resume {resume}: no output folder {folder} for this run")
    from recops_trainer.distributed.ray_train import latest_ray_state

    candidates = [folder / CHECKPOINT_DIR / STATE_FILE]
    ray_state = latest_ray_state(folder / "ray")
    if ray_state is not None:
        candidates.append(ray_state)
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        raise FileNotFoundError(f"--resume {resume}: no checkpoint under {folder}")
    return folder, max(existing, key=os.path.getmtime)


def run_training(
    config: TrainConfig,
    *,
    snapshot: Snapshot | None = None,
    split: Split | None = None,
    out_dir: Path | None = None,
    hooks: Sequence[Hook] = (),
    resume: Path | None = None,
    model_version: str = "local",
    ray: bool = False,
    scale: ScaleData | None = None,
    tracker: Any = None,
) -> Outcome:
    """One training run end to end: split, fit (here, on Ray Train, or streamed from a
    prepared folder), test once, write the model folder under ``out_dir``.

    The one path `recops train`, the tests and the benchmarks all take. Without a
    ``snapshot`` the configured source is loaded, without a ``split`` the snapshot is
    split leave-one-out; ``resume`` is a saved TrainState file;
    ``model_version`` also names the Ray run; ``tracker`` only adds the epochs a Ray run's
    workers could not log themselves (in this process it is one of the ``hooks``).
    """
    started = time.perf_counter()
    if snapshot is None:
        snapshot = load_source(
            config.dataset,
            synthetic_seed=config.model.seed,
            feedback_volume=config.feedback_volume,
        )
        log_snapshot(snapshot)
    if scale is not None and scale.streaming:
        if out_dir is None:
            raise ValueError("a streaming run needs an output folder")
        outcome = train_streaming(
            config,
            scale,
            out_dir,
            run_name=model_version,
            resume_state=resume,
            model_version=model_version,
        )
        _log_history(tracker, outcome.state.history)
        return outcome
    if split is None:
        split = leave_one_out(snapshot)
    # The data travels with the model folder: `recops compile` reads it from beside it.
    snapshot_dir = write_snapshot(snapshot, out_dir / "snapshot") if out_dir is not None else None
    if ray:
        if out_dir is None or snapshot_dir is None:
            raise ValueError("a Ray Train run needs an output folder")
        model, state = _fit_on_ray(
            config, split, snapshot_dir, out_dir, model_version, resume, tracker
        )
    else:
        model, state = fit(
            split,
            config.model,
            config.training,
            hooks=[log_epoch, *hooks],
            resume=TrainState.load(resume) if resume else None,
        )
    return finish(
        config, snapshot, split, model, state, out_dir, started, model_version=model_version
    )


def _fit_on_ray(
    config: TrainConfig,
    split: Split,
    snapshot_dir: Path,
    out: Path,
    run_name: str,
    resume_state: Path | None,
    tracker: Any,
) -> tuple[SSEPT, TrainState]:
    """Ray Train workers fit; this process rebuilds the best model from their state."""
    from recops_trainer.distributed.ray_train import fit_on_ray, ray_session

    needed = config.resources.workers * config.resources.cpus_per_worker
    with ray_session(num_cpus=max(os.cpu_count() or 1, needed)):
        storage = config.resources.storage_path or str((out / "ray").resolve())
        from recops_trainer.tracking.mlflow_run import portable_uri

        mlflow_run = (portable_uri(tracker.uri), tracker.run_id) if tracker else None
        state = fit_on_ray(
            config,
            snapshot_dir,
            storage,
            name=run_name,
            resume_state=resume_state,
            mlflow_run=mlflow_run,
        )
    model = build_model(split, config.model)
    model.load_state_dict(state.best_model_state or state.model_state)
    model.eval()
    # The rank-0 worker logged epochs as they ended; add those it could not.
    _log_history(tracker, state.history)
    return model, state


def _log_history(tracker: Any, history: list[dict[str, Any]]) -> None:
    """Log the epochs of a Ray run that its rank-0 worker did not log itself."""
    if tracker is None:
        return
    from recops_trainer.tracking.mlflow_run import logged_steps, validation_metrics

    live = logged_steps(tracker.client, tracker.run_id)
    for row in history:
        if row["epoch"] in live:
            continue
        metrics = {"loss": row["loss"]}
        if row.get("val"):
            metrics |= validation_metrics(row["val"])
        tracker.log_metrics(metrics, step=row["epoch"])


def run_train(
    config: TrainConfig,
    *,
    run_name: str | None = None,
    resume: str | None = None,
    output: Path | None = None,
    backend: str = "auto",
    track: bool = True,
) -> dict[str, Any]:
    """The whole `recops train`; returns a summary (also printed as JSON by the CLI)."""
    resume_state = None
    if resume:
        out, resume_state = resolve_resume(resume, config)
        log.info("resuming from %s", resume_state)
    else:
        out = output_dir(config, output, run_name)
    out.mkdir(parents=True, exist_ok=True)
    name = run_name or out.name
    scale = None
    if config.dataset.format in SCALE_FORMATS:
        scale = load_scale_data(config, out)
        snapshot = scale.snapshot
    else:
        snapshot = load_source(
            config.dataset,
            synthetic_seed=config.model.seed,
            feedback_volume=config.feedback_volume,
        )
    log_snapshot(snapshot)
    streaming = scale is not None and scale.streaming
    ray = streaming or use_ray(config, backend)
    tracker = None
    if track:
        from recops_trainer.tracking.mlflow_run import Tracker, flat_params

        tracker = Tracker(config)
        tracker.start(
            name,
            {
                TAG_DATASET_HASH: snapshot.hash,
                TAG_PROTOCOL: config.gate.protocol.value,
                TAG_OUTPUT: str(out.resolve()),
                TAG_BACKEND: "ray" if ray else "local",
                TAG_SYNTHETIC: str(bool(snapshot.manifest["synthetic"])).lower(),
                **lineage_tags(snapshot),
            },
        )
        tracker.log_params(flat_params(config))
    try:
        split = None if streaming else leave_one_out(snapshot)
        hooks: list[Any] = []
        if split is not None and not ray:
            hooks = [
                CheckpointHook(out, config.resources.checkpoint_every),
                BestModelHook(out, config.model, id_maps(snapshot, split), snapshot.manifest),
                ProgressHook(config.model.epochs),
            ]
            if tracker is not None:
                hooks.append(tracker)
        outcome = run_training(
            config,
            snapshot=snapshot,
            split=split,
            out_dir=out,
            hooks=hooks,
            resume=resume_state,
            model_version=name,
            ray=ray,
            scale=scale,
            tracker=tracker,
        )
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        raise
    registry = _track_and_register(config, tracker, outcome) if tracker is not None else {}
    summary = TrainingSummary(
        output=str(out.resolve()),
        model_dir=str(Path(str(outcome.model_dir)).resolve()),
        dataset_hash=snapshot.hash,
        synthetic=bool(snapshot.manifest["synthetic"]),
        epochs=outcome.state.epoch,
        best_epoch=outcome.state.best_epoch,
        seconds=round(outcome.seconds, 1),
        test=outcome.test,
        pipeline=PipelineChoice(chosen=scale.pipeline.value, reason=scale.reason)
        if scale is not None
        else None,
        **registry,
    )
    return summary.to_json_dict()


def _track_and_register(config: TrainConfig, tracker: Any, outcome: Outcome) -> dict[str, Any]:
    registered = register(config, tracker, outcome)
    gate = registered["gate"]
    log.info(
        "registered %s version %s: %s (%s)",
        registered["registered_model"],
        registered["model_version"],
        gate["verdict"],
        gate["reason"],
    )
    return {"mlflow_run_id": tracker.run_id, "tracking_uri": tracker.uri} | registered
