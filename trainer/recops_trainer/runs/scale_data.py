"""`recops train` on the large formats (ML-20M, ML-25M, ML-1B): prepare once, then train
in memory or stream from the prepared snapshot, whichever ``choose_pipeline`` picks.

The archive is prepared (streamed, bounded memory) into ``dataset.preparedDir``, or the
run's ``prepared`` folder, and reused while its source is unchanged. Small data is read
back into the in-memory snapshot and trained as any other; large data trains on Ray with
each worker streaming its shard, and is validated and tested on a seeded user subsample
(``training.evalUsers``), recorded in the metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recops_contracts.training import DataPipeline, DatasetFormat, DatasetSource, EvaluationProtocol
from recops_trainer.config import TrainConfig
from recops_trainer.data import datasets
from recops_trainer.data.prepared.reader import popular_items, to_snapshot
from recops_trainer.data.prepared.writer import prepared_or_prepare
from recops_trainer.data.snapshot import Snapshot
from recops_trainer.data.sources import with_feedback
from recops_trainer.distributed.streaming import choose_pipeline
from recops_trainer.evaluation.users import Stage
from recops_trainer.model.folder import IdMaps, save_model
from recops_trainer.runs.outcome import POPULAR_ITEMS, Outcome

log = logging.getLogger("recops.train")


@dataclass
class ScaleData:
    """The prepared data of a run and how it trains."""

    snapshot: Snapshot  # without sequences when streaming: ids and manifest only
    prepared: Path
    pipeline: DataPipeline
    reason: str

    @property
    def streaming(self) -> bool:
        return self.pipeline == DataPipeline.STREAMING


def resolve_scale_source(source: DatasetSource) -> Path:
    """The archive to prepare. ML-1B is not downloaded for the user: at several GB it is
    fetched once, by hand or by an init container, and named by dataset.uri."""
    if source.format != DatasetFormat.MOVIELENS_1B:
        return datasets.resolve_source(source.format, source.uri, source.sha256)
    if not source.uri:
        raise datasets.DataUnavailableError(
            "dataset.uri is required for movielens-1b: download "
            "https://files.grouplens.org/datasets/movielens/ml-20mx16x32.tar and give the "
            "tar (or the folder it unpacks to)"
        )
    uri = source.uri.removeprefix("file://")
    path = datasets.fetch_url(uri) if uri.startswith(("http://", "https://")) else Path(uri)
    if not path.exists():
        raise datasets.DataUnavailableError(f"dataset.uri {path} does not exist")
    if source.sha256 and path.is_file():
        datasets.verify(path, "sha256", source.sha256)
    return path


def load_scale_data(config: TrainConfig, out: Path) -> ScaleData:
    """Prepare (or reuse) the archive, choose the pipeline and say which and why."""
    source = config.dataset
    path = resolve_scale_source(source)
    prepared = Path(source.prepared_dir) if source.prepared_dir else out / "prepared"
    manifest, reused = prepared_or_prepare(source, path, prepared)
    interactions = int(manifest["stats"]["interactions"])
    pipeline, reason = choose_pipeline(source, interactions)
    log.info("data pipeline: %s (%s)%s", pipeline.value, reason, " [reused]" if reused else "")
    if not manifest.get("ordered", True):
        log.warning(
            "%s has no timestamps: each user's order is file order, not time order; use it "
            "for scale and throughput, not as a sequential quality benchmark",
            source.format.value,
        )
    manifest = manifest | {"pipeline": pipeline.value, "pipeline_reason": reason}
    if pipeline == DataPipeline.IN_MEMORY:
        snapshot = to_snapshot(prepared)
        snapshot.manifest = manifest
        snapshot = with_feedback(snapshot, source, config.feedback_volume, origin=path.name)
        return ScaleData(snapshot, prepared, pipeline, reason)
    if source.include_feedback and (source.feedback_log or config.feedback_volume):
        log.warning(
            "serving feedback is not merged into a streaming run's prepared snapshot; it "
            "trains on %s alone",
            path.name,
        )
    ids = _id_lists(prepared)
    return ScaleData(Snapshot([], ids[0], ids[1], manifest), prepared, pipeline, reason)


def _id_lists(prepared: Path) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    users = pq.read_table(prepared / "users.parquet", columns=["original"])
    items = pq.read_table(prepared / "items.parquet", columns=["original"])
    return (
        [str(u) for u in users.column("original").to_pylist()],
        [str(i) for i in items.column("original").to_pylist()],
    )


def train_streaming(
    config: TrainConfig,
    data: ScaleData,
    out: Path,
    *,
    run_name: str,
    resume_state: Path | None,
    model_version: str,
) -> Outcome:
    """Ray Train with Ray Data from the prepared folder, then the test on a subsample."""
    from recops_trainer.distributed.ray_train import ray_session
    from recops_trainer.distributed.streaming import fit_streaming
    from recops_trainer.evaluation.evaluator import evaluate
    from recops_trainer.evaluation.prepared import PreparedUsers
    from recops_trainer.evaluation.scoring import model_scorer
    from recops_trainer.training.steps import build_model

    started = time.perf_counter()
    snapshot = data.snapshot
    resources = config.resources
    # A private local Ray gets room for the data tasks beside the training workers.
    needed = resources.workers * resources.cpus_per_worker + 1
    with ray_session(num_cpus=max(os.cpu_count() or 1, needed)):
        storage = resources.storage_path or str((out / "ray").resolve())
        state, _ = fit_streaming(
            config, data.prepared, storage, name=run_name, resume_state=resume_state
        )
    model = build_model(snapshot, config.model)
    model.load_state_dict(state.best_model_state or state.model_state)
    model.eval()
    test = evaluate(
        PreparedUsers(data.prepared),
        model_scorer(model),
        maxlen=config.model.maxlen,
        stage=Stage.TEST,
        protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
        limit=config.training.eval_users,
        seed=config.model.seed,
    )
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "test": test,
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "best_valid_sampled_ndcg@10": state.best_score,
        "train_seconds": seconds,
        "pipeline": data.pipeline.value,
        "final": True,
    }
    id_maps = IdMaps(
        snapshot.user_ids, snapshot.item_ids, popular_items(data.prepared, POPULAR_ITEMS)
    )
    model_dir = save_model(
        out / "model",
        model,
        id_maps=id_maps,
        data_manifest=snapshot.manifest,
        metrics=metrics,
        hyperparameters=config.model.model_dump(mode="json", by_alias=True),
        model_version=model_version,
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return Outcome(model, state, test, model_dir, snapshot, seconds)
