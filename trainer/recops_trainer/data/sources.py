"""The data a ``DatasetSource`` names, as a snapshot: a download, a file or synthetic data,
with the serving feedback the source asks for ingested on top."""

from __future__ import annotations

from pathlib import Path

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_trainer.data import datasets, synthetic
from recops_trainer.data.ingest import extend_with_feedback
from recops_trainer.data.snapshot import Snapshot, build_snapshot


def load_source(
    source: DatasetSource, *, synthetic_seed: int = 0, feedback_volume: str | None = None
) -> Snapshot:
    """Read (or generate) the data a ``DatasetSource`` names and build its snapshot.

    Feedback comes from ``source.feedbackLog``, which must exist, or else from
    ``feedback_volume``, the operator's folder for the RecModel, which is absent until
    a serving pod started (a RecModel's first training has no feedback yet).
    """
    if source.format == DatasetFormat.SYNTHETIC:
        frame = synthetic.generate(seed=synthetic_seed)
        return build_snapshot(frame, source, origin=f"synthetic(seed={synthetic_seed})")
    path = datasets.resolve_source(source.format, source.uri, source.sha256)
    frame = datasets.read_interactions(source.format, path)
    snapshot = build_snapshot(frame, source, origin=path.name)
    return with_feedback(snapshot, source, feedback_volume, origin=path.name)


def with_feedback(
    snapshot: Snapshot, source: DatasetSource, feedback_volume: str | None, *, origin: str
) -> Snapshot:
    """``snapshot`` extended with the serving feedback ``source`` asks for (see load_source)."""
    folder = source.feedback_log
    if folder is None and feedback_volume and Path(feedback_volume).is_dir():
        folder = feedback_volume
    if not (source.include_feedback and folder):
        return snapshot
    if not Path(folder).is_dir():
        raise datasets.DataUnavailableError(f"dataset.feedbackLog {folder} is not a folder")
    # The data set is the parent, the serving feedback its new interactions: the same
    # snapshot `recops data ingest` writes, lineage included.
    extended, report = extend_with_feedback(snapshot, Path(folder))
    extended.manifest["source"] = f"{origin} + {report.new_interactions} feedback events"
    return extended
