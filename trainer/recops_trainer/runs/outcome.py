"""What a training run ends with: the test split read once, the model folder, the MLflow
registration and gate; and the log lines and id maps every run shares."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recops_contracts.tracking import TAG_FEEDBACK_INTERACTIONS, TAG_PARENT_DATASET_HASH
from recops_contracts.training import EvaluationProtocol
from recops_trainer.config import TrainConfig
from recops_trainer.data.snapshot import Snapshot
from recops_trainer.data.split import Split
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.evaluation.scoring import model_scorer
from recops_trainer.evaluation.users import Stage
from recops_trainer.model.folder import IdMaps, save_model
from recops_trainer.model.network import SSEPT
from recops_trainer.tracking.mlflow_run import Tracker, registered_name
from recops_trainer.tracking.registry import register_and_gate
from recops_trainer.training.state import EpochResult, TrainState

log = logging.getLogger("recops.train")

POPULAR_ITEMS = 1000


@dataclass
class Outcome:
    model: SSEPT
    state: TrainState
    test: dict[str, dict[str, Any]]
    model_dir: Path | None
    snapshot: Snapshot
    seconds: float


def id_maps(snapshot: Snapshot, split: Split) -> IdMaps:
    counts = split.item_counts()
    popular = np.argsort(-counts[1:], kind="stable")[:POPULAR_ITEMS] + 1
    return IdMaps(snapshot.user_ids, snapshot.item_ids, [int(i) for i in popular])


def log_epoch(result: EpochResult, state: TrainState, model: SSEPT) -> None:
    """Plain log lines: loss every epoch, validation when it ran."""
    line = f"epoch {result.epoch} loss {result.loss:.4f} ({result.seconds:.1f}s"
    if result.phases:
        line += ": " + " ".join(f"{k} {v:.1f}" for k, v in result.phases.items())
    line += ")"
    if result.validation:
        sampled, full = result.validation["sampled"], result.validation["full"]
        line += (
            f" | valid sampled ndcg@10 {sampled['ndcg@10']:.4f} hr@10 {sampled['hr@10']:.4f}"
            f" | full ndcg@10 {full['ndcg@10']:.4f} hr@10 {full['hr@10']:.4f}"
            f"{' *best*' if result.improved else ''}"
        )
    log.info(line)


def test_metrics(split: Split, model: SSEPT, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The test split, read once, under both protocols."""
    return evaluate(
        split,
        model_scorer(model),
        maxlen=model.shape.maxlen,
        stage=Stage.TEST,
        protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
        seed=seed,
    )


def lineage_tags(snapshot: Snapshot) -> dict[str, str]:
    """MLflow tags of a snapshot built on another one (serving feedback added)."""
    lineage = snapshot.manifest.get("lineage")
    if not lineage:
        return {}
    return {
        TAG_PARENT_DATASET_HASH: lineage["parent"],
        TAG_FEEDBACK_INTERACTIONS: str(lineage["ingested"]["new_interactions"]),
    }


def log_snapshot(snapshot: Snapshot) -> None:
    stats = snapshot.manifest["stats"]
    log.info(
        "data %s%s: %d users, %d items, %d interactions, hash %s",
        snapshot.manifest["format"],
        " (SYNTHETIC)" if snapshot.manifest["synthetic"] else "",
        stats["users"],
        stats["items"],
        stats["interactions"],
        snapshot.hash[:12],
    )
    lineage = snapshot.manifest.get("lineage")
    if lineage:
        counts = lineage["ingested"]
        log.info(
            "feedback: %d new interactions from %d segments on data %s (skipped: %d lines "
            "that are not records, %d repeated events; %d for requests no log served)",
            counts["new_interactions"],
            counts["segments"],
            lineage["parent"][:12],
            counts["invalid"],
            counts["duplicates"],
            counts["unknown_requests"],
        )


def finish(
    config: TrainConfig,
    snapshot: Snapshot,
    split: Split,
    model: SSEPT,
    state: TrainState,
    out_dir: Path | None,
    started: float,
    *,
    model_version: str = "local",
) -> Outcome:
    """Read the test split once (both protocols) and write the final model folder."""
    test = test_metrics(split, model)
    seconds = time.perf_counter() - started
    for protocol, values in test.items():
        log.info(
            "test (%s): ndcg@10 %.4f hr@10 %.4f mrr %.4f",
            protocol,
            values["ndcg@10"],
            values["hr@10"],
            values["mrr"],
        )
    model_dir = None
    if out_dir is not None:
        metrics = {
            "test": test,
            "best_epoch": state.best_epoch,
            "epochs": state.epoch,
            "best_valid_sampled_ndcg@10": state.best_score,
            "train_seconds": seconds,
            "final": True,
        }
        model_dir = save_model(
            Path(out_dir) / "model",
            model,
            id_maps=id_maps(snapshot, split),
            data_manifest=snapshot.manifest,
            metrics=metrics,
            hyperparameters=config.model.model_dump(mode="json", by_alias=True),
            model_version=model_version,
        )
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return Outcome(model, state, test, model_dir, snapshot, seconds)


def register(config: TrainConfig, tracker: Tracker, outcome: Outcome) -> dict[str, Any]:
    """Log the outcome to the tracker's run, register and gate it under ``config``'s name
    and gate, finish the run; returns the summary's registry fields."""
    flat = tracker.log_test(outcome.test)
    assert outcome.model_dir is not None
    tracker.log_artifacts(outcome.model_dir, outcome.state.history)
    model_uri = tracker.log_model(outcome.model)
    name = registered_name(config)
    version, decision = register_and_gate(
        tracker.client,
        name=name,
        model_uri=model_uri,
        run_id=tracker.run_id,
        metrics=flat,
        gate=config.gate,
        dataset_hash=outcome.snapshot.hash,
    )
    tracker.end("FINISHED")
    return {
        "mlflow_run_id": tracker.run_id,
        "registered_model": name,
        "model_version": version,
        "gate": {"verdict": decision.verdict, "reason": decision.reason},
    }
