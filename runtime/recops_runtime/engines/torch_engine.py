"""cpu-torch: the eager reference, stored as a torch.export program (``model.pt2``).

The runtime cannot import the trainer's model code, so the reference travels as a
self-contained program that torch alone can load. torch is imported here lazily: the
runtime image may not have it, and only this target needs it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.engines.base import FloatArray, IntArray
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.toolkits import require


class ProgramScorer:
    """Scores with a saved torch.export program (the reference, also outside an engine)."""

    def __init__(self, program: Path, threads: int | None, target: str = "cpu-torch") -> None:
        torch = require("torch", target, "pip install torch==2.13.0")
        if threads:
            # Process-wide in torch; a server runs one torch engine per process.
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self._module: Any = torch.export.load(str(program)).module()
        except Exception as error:
            raise CorruptEngineError(
                f"{program} is not a loadable torch.export program: {error}"
            ) from error

    def __call__(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        torch = self._torch
        with torch.inference_mode():
            out = self._module(torch.from_numpy(user_ids), torch.from_numpy(history))
        return np.asarray(out.numpy(), dtype=np.float32)


class TorchEngine:
    def __init__(self, manifest: EngineManifest, program: Path, threads: int | None) -> None:
        self.manifest = manifest
        self._scorer: ProgramScorer | None = ProgramScorer(program, threads, manifest.target)
        maxlen, width = manifest.input_spec.maxlen, manifest.input_spec.num_items + 1
        probe = self.score(np.ones(1, np.int64), np.ones((1, maxlen), np.int64))
        if probe.shape != (1, width):
            raise CorruptEngineError(
                f"{program} scores {probe.shape[1]} columns but the manifest says {width}: "
                "the artifact belongs to another model; rebuild the engine"
            )

    def score(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        if self._scorer is None:
            raise RuntimeError("engine is closed")
        return self._scorer(user_ids, history)

    def close(self) -> None:
        self._scorer = None


def build(reference: Path, out_dir: Path) -> str:
    """The reference program is the artifact: copy it."""
    shutil.copyfile(reference, out_dir / "model.pt2")
    return "model.pt2"
