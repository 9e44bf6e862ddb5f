"""gpu-tensorrt: an fp16 TensorRT engine (``model.plan``) built from the ONNX graph.

A plan is specific to the GPU model and TensorRT version that built it, so the compile
Job runs on the node type that serves it; the manifest records the GPU and the loader
refuses a plan from another one. Device buffers are torch CUDA tensors (torch is in the
GPU image; it spares a second CUDA binding).
"""

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
from recops_runtime.engines.errors import CorruptEngineError, EngineError
from recops_runtime.engines.interface import check_interface
from recops_runtime.engines.padding import trim_leading_padding
from recops_runtime.engines.toolkits import require_tensorrt

TARGET = "gpu-tensorrt"
MAX_BATCH = 64
OPT_BATCH = 8
WORKSPACE_BYTES = 1 << 30


def gpu_name() -> str:
    _, torch = require_tensorrt(TARGET)
    return str(torch.cuda.get_device_name(0))


def build(onnx_model: Path, out_dir: Path, maxlen: int) -> tuple[str, dict[str, str | int]]:
    """Parse the ONNX graph and build an fp16 plan for batches 1..MAX_BATCH."""
    trt, _ = require_tensorrt(TARGET)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_model)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_model}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_USER_IDS, (1,), (OPT_BATCH,), (MAX_BATCH,))
    profile.set_shape(INPUT_HISTORY, (1, 1), (OPT_BATCH, maxlen), (MAX_BATCH, maxlen))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"TensorRT failed to build an engine from {onnx_model} (see its log)")
    (out_dir / "model.plan").write_bytes(bytes(plan))
    return "model.plan", {"max_batch": MAX_BATCH, "gpu": gpu_name(), "tensorrt": trt.__version__}


class TensorRTEngine:
    def __init__(self, manifest: EngineManifest, plan: Path, threads: int | None) -> None:
        del threads  # the GPU sets the pace; host threads only copy
        trt, torch = require_tensorrt(manifest.target)
        built_on = manifest.tool_versions.get("gpu")
        here = str(torch.cuda.get_device_name(0))
        if built_on is not None and built_on != here:
            raise CorruptEngineError(
                f"{plan} was built on {built_on} but this node has {here}: TensorRT plans "
                "only run on the GPU model that built them; compile on this node type"
            )
        self.manifest = manifest
        self._torch = torch
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if self._engine is None:
            raise CorruptEngineError(f"{plan} is not a TensorRT plan this version can load")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = {
            n: list(self._engine.get_tensor_shape(n))
            for n in names
            if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        }
        outputs = {n: list(self._engine.get_tensor_shape(n)) for n in names if n not in inputs}
        check_interface(plan, manifest, inputs, outputs)  # -1 marks a dynamic dimension
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()

    def score(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        torch = self._torch
        if user_ids.shape[0] > MAX_BATCH:
            return np.concatenate(
                [
                    self.score(user_ids[i : i + MAX_BATCH], history[i : i + MAX_BATCH])
                    for i in range(0, user_ids.shape[0], MAX_BATCH)
                ]
            )
        history = trim_leading_padding(history)
        with torch.cuda.stream(self._stream):
            users = torch.from_numpy(np.ascontiguousarray(user_ids)).cuda(non_blocking=True)
            items = torch.from_numpy(np.ascontiguousarray(history)).cuda(non_blocking=True)
            scores = torch.empty(
                (users.shape[0], self.manifest.input_spec.num_items + 1),
                dtype=torch.float32,
                device="cuda",
            )
            tensors: dict[str, Any] = {
                INPUT_USER_IDS: users,
                INPUT_HISTORY: items,
                OUTPUT_SCORES: scores,
            }
            self._context.set_input_shape(INPUT_USER_IDS, tuple(users.shape))
            self._context.set_input_shape(INPUT_HISTORY, tuple(items.shape))
            for name, tensor in tensors.items():
                self._context.set_tensor_address(name, tensor.data_ptr())
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise EngineError("TensorRT execution failed")
            out = scores.cpu()
        self._stream.synchronize()
        return np.asarray(out.numpy(), dtype=np.float32)

    def close(self) -> None:
        self._context = None
        self._engine = None
