"""`recops tune`: Ray Tune with ASHA over the config's search space, reusing ``fit``.

Each trial runs the training loop in one Ray worker and reports validation metrics when
it validates; ASHA stops weak trials early. The best trial's best checkpoint becomes the
model: it is tested once, tracked (every trial a nested MLflow run under the tuning run),
registered and gated exactly like `recops train`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recops_contracts.tracking import (
    TAG_DATASET_HASH,
    TAG_MODE,
    TAG_OUTPUT,
    TAG_PROTOCOL,
    metric_key,
)
from recops_contracts.training import EvaluationProtocol
from recops_trainer.config import TrainConfig
from recops_trainer.data.snapshot import read_snapshot, write_snapshot
from recops_trainer.data.sources import load_source
from recops_trainer.data.split import leave_one_out
from recops_trainer.model.network import SSEPT
from recops_trainer.runs.outcome import Outcome, finish, log_snapshot, register
from recops_trainer.runs.search_space import metric_name, search_space, trial_hyperparameters
from recops_trainer.training.hooks import STATE_FILE, write_state
from recops_trainer.training.loop import fit
from recops_trainer.training.state import EpochResult, TrainState
from recops_trainer.training.steps import build_model

log = logging.getLogger("recops.tune")


def _trial(params: dict[str, Any], *, config_json: dict[str, Any], snapshot: str) -> None:
    from ray import tune

    config = TrainConfig.model_validate(config_json)
    hp = trial_hyperparameters(config.model, params)
    split = leave_one_out(read_snapshot(Path(snapshot)))

    def report(result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if result.validation is None:
            return
        metrics: dict[str, Any] = {"epoch": result.epoch, "loss": result.loss}
        for name, value in result.validation["sampled"].items():
            if isinstance(value, float):
                metrics[metric_key("val", EvaluationProtocol.SAMPLED, name)] = value
        full_ndcg = metric_key("val", EvaluationProtocol.FULL, "ndcg@10")
        metrics[full_ndcg] = result.validation["full"]["ndcg@10"]
        if result.improved or result.final:
            with tempfile.TemporaryDirectory() as tmp:
                write_state(state, Path(tmp))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(metrics)

    fit(split, hp, config.training, hooks=[report])


def run_tune(
    config: TrainConfig, *, output: Path | None = None, track: bool = True
) -> dict[str, Any]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from recops_trainer.distributed.ray_train import ray_session

    assert config.tune is not None
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(output or config.output or Path("runs") / f"tune-{stamp}")
    out.mkdir(parents=True, exist_ok=True)
    snapshot = load_source(
        config.dataset,
        synthetic_seed=config.model.seed,
        feedback_volume=config.feedback_volume,
    )
    log_snapshot(snapshot)
    snapshot_dir = write_snapshot(snapshot, out / "snapshot")
    metric = metric_name(config.tune.metric)
    epochs = config.model.epochs
    grace = min(epochs, config.training.eval_every)
    scheduler = ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=grace, reduction_factor=2
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            config_json=config.model_dump(mode="json", by_alias=True),
            snapshot=str(snapshot_dir.resolve()),
        ),
        {"cpu": 1},
    )
    with ray_session(num_cpus=max(os.cpu_count() or 1, config.tune.max_concurrent or 1)):
        tuner = tune.Tuner(
            trainable,
            param_space=search_space(config.tune.search_space),
            tune_config=tune.TuneConfig(
                metric=metric,
                mode="max",
                scheduler=scheduler,
                num_samples=config.tune.num_samples,
                max_concurrent_trials=config.tune.max_concurrent,
            ),
            # On a multi-node cluster every trial's checkpoints need storage all nodes reach:
            # resources.storagePath (a URI), else <output>/ray on the run's storage claim.
            run_config=tune.RunConfig(
                name=out.name,
                storage_path=config.resources.storage_path or str((out / "ray").resolve()),
            ),
        )
        grid = tuner.fit()
    best = grid.get_best_result(metric=metric, mode="max", scope="all")
    checkpoint = best.get_best_checkpoint(metric=metric, mode="max") or best.checkpoint
    if checkpoint is None:
        raise RuntimeError("no tuning trial reported a checkpoint")
    with checkpoint.as_directory() as folder:
        state = TrainState.load(Path(folder) / STATE_FILE)
    best_params = {k: (best.config or {})[k] for k in config.tune.search_space}
    best_config = config.model_copy(
        update={"model": trial_hyperparameters(config.model, best_params)}
    )
    split = leave_one_out(snapshot)
    model = build_model(split, best_config.model)
    model.load_state_dict(state.best_model_state or state.model_state)
    model.eval()
    outcome = finish(
        best_config, snapshot, split, model, state, out, started, model_version=out.name
    )
    results = [grid[i] for i in range(len(grid))]
    trials = [
        {
            "config": {k: (r.config or {})[k] for k in config.tune.search_space},
            "metrics": {k: v for k, v in (r.metrics or {}).items() if k.startswith("val_")},
            "epochs": (r.metrics or {}).get("epoch"),
        }
        for r in results
    ]
    summary: dict[str, Any] = {
        "output": str(out),
        "model_dir": str(outcome.model_dir),
        "dataset_hash": snapshot.hash,
        "best_config": best_params,
        "trials": trials,
        "test": outcome.test,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if track:
        summary |= _track(best_config, results, outcome, out, config)
    return summary


def _track(
    best_config: TrainConfig,
    results: list[Any],
    outcome: Outcome,
    out: Path,
    config: TrainConfig,
) -> dict[str, Any]:
    from recops_trainer.tracking.mlflow_run import Tracker, flat_params

    assert config.tune is not None
    tags = {
        TAG_DATASET_HASH: outcome.snapshot.hash,
        TAG_PROTOCOL: config.gate.protocol.value,
        TAG_OUTPUT: str(out.resolve()),
        TAG_MODE: "tune",
    }
    parent = Tracker(best_config)
    parent_id = parent.start(out.name, tags)
    parent.log_params(flat_params(best_config))
    for index, result in enumerate(results):
        child = Tracker(config)
        child.start(f"{out.name}-trial-{index}", {**tags, TAG_MODE: "trial"}, parent_id)
        child.log_params({k: str(result.config[k]) for k in config.tune.search_space})
        frame = result.metrics_dataframe
        if frame is not None:
            for _, row in frame.iterrows():
                values = {k: float(row[k]) for k in frame.columns if str(k).startswith("val_")}
                values["loss"] = float(row["loss"])
                child.log_metrics(values, step=int(row["epoch"]))
        child.end("FINISHED")
    return register(config, parent, outcome)
