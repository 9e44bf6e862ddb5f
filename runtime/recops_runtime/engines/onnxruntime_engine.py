"""ONNX Runtime engines: cpu-onnxruntime, cpu-onnxruntime-int8, edge-int8, gpu-onnxruntime-cuda."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.engines.base import (
    INPUT_HISTORY,
    INPUT_USER_IDS,
    OUTPUT_SCORES,
    FloatArray,
    IntArray,
)
from recops_runtime.engines.errors import CorruptEngineError, MissingToolkitError
from recops_runtime.engines.interface import check_interface
from recops_runtime.engines.padding import trim_leading_padding
from recops_runtime.engines.targets import get_target
from recops_runtime.engines.toolkits import require, require_cuda_onnxruntime


def session_options(ort: Any, threads: int | None) -> Any:
    """All graph optimizations, a fixed intra-op pool and one sequential stream.

    One inference at a time per session (the batcher serializes calls), so inter-op
    parallelism only adds threads that fight the intra-op pool for cores.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    # Spinning workers burn the cores the server's event loop and the other replicas need:
    # with 2 threads it doubled the CPU time of a lone request (2.5 vs 1.2 ms) when the
    # cores were shared.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRuntimeEngine:
    def __init__(self, manifest: EngineManifest, model: Path, threads: int | None) -> None:
        spec = get_target(manifest.target)
        if spec.needs_gpu:
            ort = require_cuda_onnxruntime(spec.name)
            providers: list[Any] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            ort = require("onnxruntime", spec.name, "pip install 'recops[runtime]'")
            providers = ["CPUExecutionProvider"]
        self.manifest = manifest
        try:
            self._session = ort.InferenceSession(
                str(model), sess_options=session_options(ort, threads), providers=providers
            )
        except Exception as error:
            raise CorruptEngineError(f"{model} is not a loadable ONNX model: {error}") from error
        if spec.needs_gpu and self._session.get_providers()[0] != "CUDAExecutionProvider":
            # ONNX Runtime falls back to the CPU silently when CUDA fails to start.
            raise MissingToolkitError(
                f"{spec.name}: the CUDA execution provider did not start (CUDA or cuDNN "
                "libraries missing or no GPU visible); ONNX Runtime would run on the CPU"
            )
        check_interface(
            model,
            manifest,
            {i.name: list(i.shape) for i in self._session.get_inputs()},
            {o.name: list(o.shape) for o in self._session.get_outputs()},
        )
        self._trim = manifest.input_spec.dynamic_length

    def score(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        if self._trim:
            history = np.ascontiguousarray(trim_leading_padding(history))
        (scores,) = self._session.run(
            [OUTPUT_SCORES], {INPUT_USER_IDS: user_ids, INPUT_HISTORY: history}
        )
        return np.asarray(scores, dtype=np.float32)

    def close(self) -> None:
        self._session = None
