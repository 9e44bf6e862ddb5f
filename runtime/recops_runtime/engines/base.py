"""The contract between engine builders, engine loaders and the serving runtime.

An engine is a folder::

    manifest.json   EngineManifest (below)
    <artifact>      model.onnx (+ model.onnx.data), model.xml + model.bin, model.pt2, model.plan
    id_maps.json    {"users": [...], "items": [...], "popular_items": [...]}

``id_maps.json`` lists original ids in internal-id order starting at internal id 1
(internal id 0 is padding), and up to 1,000 internal item ids by descending training
popularity (the cold-start fallback). Every file is covered by a sha256 in the manifest,
so a loader can refuse a corrupt or mismatched artifact before it serves anything.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from recops_runtime.engines.cpu import CpuInfo

MANIFEST_FILE = "manifest.json"
ID_MAPS_FILE = "id_maps.json"

# The graph's interface: inputs user_ids int64 [batch] and history int64 [batch, maxlen]
# (internal item ids, left-padded with 0); output scores float32 [batch, num_items + 1]
# where column j is internal item id j and column 0 is padding.
INPUT_USER_IDS = "user_ids"
INPUT_HISTORY = "history"
OUTPUT_SCORES = "scores"


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maxlen: int = Field(ge=1, description="History length the graph takes.")
    num_items: int = Field(ge=1, description="Items; scores have num_items + 1 columns.")
    num_users: int = Field(ge=0, description="Users known at training time.")
    dynamic_length: bool = Field(
        default=False,
        description="The graph also takes histories shorter than maxlen (right-aligned "
        "positions); the engine drops leading all-padding columns of a batch.",
    )


class ParityResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: int = Field(ge=0)
    max_abs_diff: float = Field(ge=0.0)
    top10_overlap: float = Field(ge=0.0, le=1.0)
    ndcg10_reference: float
    ndcg10_engine: float
    ndcg10_delta: float
    reference_maxlen: int | None = Field(
        default=None, description="History length the reference saw (shorter for edge builds)."
    )
    ndcg10_full_history: float | None = Field(
        default=None,
        description="NDCG@10 of the reference with the model's full history, where the "
        "engine takes a shorter one (what the shorter history costs).",
    )


class LatencyResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(ge=1)
    p50_ms: float = Field(ge=0.0)
    p99_ms: float = Field(ge=0.0)
    users_per_second: float = Field(ge=0.0)


class EngineManifest(BaseModel):
    """What was built, from what, with which tools, and what was measured."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(default=1)
    target: str = Field(description="Target name, e.g. cpu-onnxruntime.")
    precision: str = Field(description="fp32, fp16 or int8.")
    opset: int | None = Field(default=None, description="ONNX opset, where ONNX is involved.")
    input_spec: InputSpec
    model_name: str | None = Field(default=None, description="Registered model name.")
    model_version: str = Field(description="Source model version.")
    model_sha256: str = Field(description="sha256 of the source model weights.")
    dataset_hash: str | None = Field(default=None)
    id_maps: str = Field(default=ID_MAPS_FILE, description="Id maps file, relative.")
    artifact: str = Field(description="Main artifact file, relative.")
    files: dict[str, str] = Field(description="Relative path to sha256 of every engine file.")
    tool_versions: dict[str, str] = Field(default_factory=dict)
    parity: ParityResult | None = None
    latency: list[LatencyResult] = Field(default_factory=list)
    built_at: str | None = None
    measured_on: CpuInfo | None = Field(
        default=None,
        description="The processor parity and latency were measured on: int8 kernels, and "
        "so int8 rankings, differ by instruction set.",
    )
    build_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="How it was built: quantization, calibration, threads."
    )


FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class Engine(Protocol):
    """A loaded engine. ``score`` is safe to call from one thread at a time."""

    manifest: EngineManifest

    def score(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        """Scores ``[batch, num_items + 1]`` for ``user_ids [batch]``, ``history [b, maxlen]``."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...
