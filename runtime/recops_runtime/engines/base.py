"""The contract between engine builders, engine loaders and the serving runtime.

An engine is a folder::

    manifest.json   EngineManifest (``recops_contracts.engine_manifest``)
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

from recops_contracts.engine_manifest import EngineManifest

# The graph's interface: inputs user_ids int64 [batch] and history int64 [batch, maxlen]
# (internal item ids, left-padded with 0); output scores float32 [batch, num_items + 1]
# where column j is internal item id j and column 0 is padding.
INPUT_USER_IDS = "user_ids"
INPUT_HISTORY = "history"
OUTPUT_SCORES = "scores"


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
