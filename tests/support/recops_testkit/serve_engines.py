"""Real engine folders for the runtime's tests, built the way `recops compile` builds them.

A small SSE-PT network (random weights: tests check the service, not model quality) on
the trainer's synthetic interactions is saved as a model folder, exported by the trainer
and compiled by the runtime's builder for cpu-onnxruntime, manifest and checks included.
Item ids are the snapshot's original ids (strings of the synthetic generator).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from recops_runtime.engines.bundle import ExportBundle

SNAPSHOT_SEED = 0


def build_real_engines(root: Path) -> dict[str, Path]:
    """Engines under ``root``: "v1" and "v2" (model versions 1 and 2).

    Both are compiled from one export of a small network (exporting is the slow step); the
    second build is labelled model version 2, so tests can tell which build answered.
    """
    from recops_runtime.engines import BuildOptions, build_engine
    from recops_runtime.engines.bundle import EXPORT_FILE

    options = BuildOptions(parity_users=64, latency_batches=(1,), latency_budget_s=0.05, threads=1)
    small = _export(root / ".work" / "small", maxlen=20, item_dim=16, user_dim=8, num_blocks=1)
    engines = {}
    for name, model_version in (("v1", "1"), ("v2", "2")):
        info = json.loads((small.root / EXPORT_FILE).read_text())
        info["model_version"] = model_version
        (small.root / EXPORT_FILE).write_text(json.dumps(info))
        build_engine(ExportBundle(small.root), "cpu-onnxruntime", root / name, options)
        engines[name] = root / name
    return engines


def _export(work: Path, **shape: int) -> ExportBundle:
    """A randomly initialised SSE-PT on the synthetic snapshot, saved and exported."""
    import torch

    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.compile.export import export_bundle
    from recops_trainer.data.sources import load_source
    from recops_trainer.model.folder import IdMaps, save_model
    from recops_trainer.model.network import SSEPT, ModelShape

    torch.set_num_threads(1)
    torch.manual_seed(SNAPSHOT_SEED)
    snapshot = load_source(
        DatasetSource(format=DatasetFormat.SYNTHETIC), synthetic_seed=SNAPSHOT_SEED
    )
    model_shape = ModelShape(
        num_users=snapshot.num_users,
        num_items=snapshot.num_items,
        num_heads=1,
        dropout=0.0,
        **shape,
    )
    counts: dict[int, int] = {}
    for sequence in snapshot.sequences:
        for item in sequence.tolist():
            counts[item] = counts.get(item, 0) + 1
    popular = sorted(counts, key=lambda i: (-counts[i], i))[:100]
    model_dir = save_model(
        work / "model",
        SSEPT(model_shape).eval(),
        id_maps=IdMaps(snapshot.user_ids, snapshot.item_ids, popular),
        data_manifest=snapshot.manifest,
        model_version="1",
    )
    return export_bundle(
        model_dir,
        work / "export",
        snapshot=snapshot,
        parity_users=64,
        calibration_users=16,
        edge_maxlen=None,
    )


@functools.cache
def _snapshot_ids() -> tuple[list[str], list[str]]:
    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.data.sources import load_source

    snapshot = load_source(
        DatasetSource(format=DatasetFormat.SYNTHETIC), synthetic_seed=SNAPSHOT_SEED
    )
    return snapshot.user_ids, snapshot.item_ids


def item_id(n: int) -> str:
    """The original id of internal item ``n`` (1-based) of the test engines."""
    return _snapshot_ids()[1][n - 1]


def user_id(n: int) -> str:
    """The original id of internal user ``n`` (1-based) of the test engines."""
    return _snapshot_ids()[0][n - 1]


def num_items() -> int:
    return len(_snapshot_ids()[1])
