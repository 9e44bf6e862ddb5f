"""Export a trained model for the engine builders.

``export_bundle`` turns a model folder into an export bundle (see
``recops_runtime.engines.bundle``): the reference program, the ONNX serving graph, and
real users' sequences from the model's own dataset snapshot (its hash must match) for
parity and calibration.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from recops_contracts.engine_manifest import InputSpec
from recops_runtime.engines.base import INPUT_HISTORY, INPUT_USER_IDS, OUTPUT_SCORES
from recops_runtime.engines.bundle import (
    CALIBRATION_FILE,
    EVALUATION_FILE,
    EXPORT_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    ExportBundle,
    ExportInfo,
)
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.targets import EDGE_MAXLEN
from recops_runtime.engines.toolkits import tool_versions
from recops_runtime.telemetry.traffic_drift import REFERENCE_FILE as DRIFT_REFERENCE_FILE, Reference
from recops_trainer.compile.model_source import ExportError, load_snapshot_of
from recops_trainer.compile.serving_graph import ServingGraph
from recops_trainer.data.snapshot import Snapshot
from recops_trainer.data.split import Split, history_matrix, leave_one_out
from recops_trainer.model.folder import ID_MAPS_FILE, load_model, weights_sha256
from recops_trainer.model.network import SSEPT

log = logging.getLogger(__name__)

OPSET = 18
EXAMPLE_BATCH = 2


def user_sequences(
    split: Split, maxlen: int, *, count: int, seed: int, stage: str, exclude: set[int]
) -> UserSequences:
    """Up to ``count`` seeded users with a held-out item and their history before it.

    ``stage="test"``: history = training items + validation item, target = test item (the
    evaluation split); ``"valid"``: training items, target = validation item.
    """
    held = split.test if stage == "test" else split.valid
    lengths = np.asarray([len(s) for s in split.train])
    users = np.flatnonzero((held > 0) & (lengths > 0)) + 1
    users = np.asarray([u for u in users if int(u) not in exclude], np.int64)
    if len(users) > count:
        users = np.sort(np.random.default_rng(seed).choice(users, size=count, replace=False))
    if stage == "test":
        histories = [np.append(split.train[u - 1], split.valid[u - 1]) for u in users]
    else:
        histories = [split.train[u - 1] for u in users]
    return UserSequences(
        users.astype(np.int64), history_matrix(histories, maxlen), held[users - 1].astype(np.int64)
    )


def _export_reference(model: SSEPT, example: tuple[torch.Tensor, ...], path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, str(path))


def _export_onnx(model: SSEPT, example: tuple[torch.Tensor, ...], path: Path) -> int:
    """The serving graph in ONNX, one file, dynamic batch and history length."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=65536)
    length = torch.export.Dim("length", min=2, max=model.shape.maxlen)
    torch.onnx.export(
        ServingGraph(model),
        example,
        str(path),
        input_names=[INPUT_USER_IDS, INPUT_HISTORY],
        output_names=[OUTPUT_SCORES],
        dynamic_shapes=({0: batch}, {0: batch, 1: length}),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    opsets = {
        o.domain: o.version for o in onnx.load(str(path), load_external_data=False).opset_import
    }
    return int(opsets.get("", OPSET))


def export_bundle(
    model_dir: Path,
    out_dir: Path,
    *,
    data: str | None = None,
    snapshot: Snapshot | None = None,
    parity_users: int = 1000,
    calibration_users: int = 512,
    edge_maxlen: int | None = EDGE_MAXLEN,
    model_name: str | None = None,
    seed: int = 0,
) -> ExportBundle:
    """Write the export bundle of the model folder ``model_dir`` into ``out_dir``."""
    loaded = load_model(model_dir)
    model = loaded.model.eval()
    shape = model.shape
    snapshot = snapshot or load_snapshot_of(loaded, data, model_dir)
    if (snapshot.num_users, snapshot.num_items) != (shape.num_users, shape.num_items):
        raise ExportError(
            f"the snapshot has {snapshot.num_users} users and {snapshot.num_items} items, the "
            f"model {shape.num_users} and {shape.num_items}: not the model's data"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    split = leave_one_out(snapshot)
    evaluation = user_sequences(
        split, shape.maxlen, count=parity_users, seed=seed, stage="test", exclude=set()
    )
    calibration = user_sequences(
        split,
        shape.maxlen,
        count=calibration_users,
        seed=seed + 1,
        stage="valid",
        exclude={int(u) for u in evaluation.user_ids},
    )
    if len(calibration) < calibration_users:
        # Small data sets: the evaluation users' earlier sequences (without their test
        # item) calibrate too.
        calibration = user_sequences(
            split,
            shape.maxlen,
            count=calibration_users,
            seed=seed + 1,
            stage="valid",
            exclude=set(),
        )
    evaluation.save(out_dir / EVALUATION_FILE)
    calibration.save(out_dir / CALIBRATION_FILE)
    example = (
        torch.from_numpy(evaluation.user_ids[:EXAMPLE_BATCH].copy()),
        torch.from_numpy(evaluation.history[:EXAMPLE_BATCH].copy()),
    )
    with torch.no_grad():
        _export_reference(model, example, out_dir / REFERENCE_FILE)
        opset = _export_onnx(model, example, out_dir / ONNX_FILE)
    shutil.copyfile(model_dir / ID_MAPS_FILE, out_dir / ID_MAPS_FILE)
    # What serving compares its traffic with (drift): the data this model was trained on.
    sequences = [np.asarray(s, dtype=np.int64) for s in snapshot.sequences]
    drift = Reference.from_sequences(sequences, shape.num_items, shape.maxlen)
    drift.save(out_dir / DRIFT_REFERENCE_FILE)
    info = ExportInfo(
        input_spec=InputSpec(
            maxlen=shape.maxlen,
            num_items=shape.num_items,
            num_users=shape.num_users,
            dynamic_length=True,
        ),
        edge_maxlen=min(edge_maxlen, shape.maxlen) if edge_maxlen else None,
        opset=opset,
        model_name=model_name,
        model_version=loaded.model_version or "local",
        model_sha256=weights_sha256(model_dir),
        dataset_hash=snapshot.hash,
        tool_versions=tool_versions("torch", "onnx", "onnxscript"),
    )
    (out_dir / EXPORT_FILE).write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    log.info("exported %s to %s (%d evaluation users)", model_dir, out_dir, len(evaluation))
    return ExportBundle(out_dir)
