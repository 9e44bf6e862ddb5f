"""OpenVINO engines: cpu-openvino (fp32 IR) and cpu-openvino-int8 (NNCF post-training).

Inference runs with the f32 precision hint: on CPUs with bf16 units OpenVINO would
otherwise compute in bf16 (score differences near 1e-3, enough to reorder close items),
and int8 models keep their non-quantized operations in f32 for the same reason.

The int8 build quantizes weights to 7 bits (NNCF's overflow fix on all layers; its
default covers the first layer only). On AVX2-only x86 OpenVINO's uint8 x int8 kernels
sum pairs of products in 16 bits, which saturate with full-range weights: with every
product quantized the test model kept a top-10 overlap of 0.989 with VNNI but 0.934 on
(emulated) AVX2, 0.986 on both with 7-bit weights. That still left the ML-1M model at
0.945 with VNNI and 0.932 on AVX2; quantizing only the products ``int8_matmuls`` picks
gives 0.989 on both (see ``engines.cpu``).
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
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.interface import Dim, check_interface
from recops_runtime.engines.onnx_build import int8_matmuls
from recops_runtime.engines.padding import trim_leading_padding
from recops_runtime.engines.toolkits import require

CALIBRATION_BATCH = 32


def compile_config(threads: int | None) -> dict[str, Any]:
    """f32 precision, latency mode, and threads free to run on any core.

    Pinning (OpenVINO's default on Linux) ties each inference thread to one core; where
    the cores are shared (the server's other threads, other pods) a call then waits for
    that core: 2.1 ms instead of 0.8 ms at batch 1 on a busy 2-core machine.
    """
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def _dims(port: Any) -> list[Dim]:
    return [d.get_length() if d.is_static else None for d in port.get_partial_shape()]


class OpenVINOEngine:
    def __init__(self, manifest: EngineManifest, model: Path, threads: int | None) -> None:
        ov = require("openvino", manifest.target, "pip install 'recops[runtime]'")
        self.manifest = manifest
        core = ov.Core()
        try:
            network = core.read_model(str(model))
        except Exception as error:
            raise CorruptEngineError(f"{model} is not a loadable OpenVINO IR: {error}") from error
        check_interface(
            model,
            manifest,
            {port.get_any_name(): _dims(port) for port in network.inputs},
            {port.get_any_name(): _dims(port) for port in network.outputs},
        )
        self._compiled = core.compile_model(network, "CPU", compile_config(threads))
        self._request = self._compiled.create_infer_request()
        self._output = self._compiled.output(OUTPUT_SCORES)
        self._trim = manifest.input_spec.dynamic_length

    def score(self, user_ids: IntArray, history: IntArray) -> FloatArray:
        if self._trim:
            history = np.ascontiguousarray(trim_leading_padding(history))
        result = self._request.infer({INPUT_USER_IDS: user_ids, INPUT_HISTORY: history})
        return np.array(result[self._output], dtype=np.float32, copy=True)

    def close(self) -> None:
        self._request = None
        self._compiled = None


def build(
    onnx_model: Path, out_dir: Path, calibration: UserSequences | None
) -> tuple[str, dict[str, str | int]]:
    """Convert the ONNX graph to IR (fp32 weights), quantizing with NNCF when calibrated.

    Only the products ``onnx_build.int8_matmuls`` picks are quantized (the converter keeps
    the ONNX node names); every other MatMul is in NNCF's ignored scope.
    """
    ov = require("openvino", "cpu-openvino", "pip install 'recops[runtime]'")
    network = ov.convert_model(str(onnx_model))
    options: dict[str, str | int] = {}
    if calibration is not None:
        nncf = require("nncf", "cpu-openvino-int8", "pip install nncf==3.4.0")
        batches = [
            {
                INPUT_USER_IDS: calibration.user_ids[i : i + CALIBRATION_BATCH],
                INPUT_HISTORY: calibration.history[i : i + CALIBRATION_BATCH],
            }
            for i in range(0, len(calibration), CALIBRATION_BATCH)
        ]
        matmuls = int8_matmuls(onnx_model)
        kept = sorted(set(matmuls.every) - set(matmuls.quantized))
        network = nncf.quantize(
            network,
            nncf.Dataset(batches),
            model_type=nncf.ModelType.TRANSFORMER,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(batches),
            ignored_scope=nncf.IgnoredScope(names=kept, validate=False),
            advanced_parameters=nncf.AdvancedQuantizationParameters(
                overflow_fix=nncf.OverflowFix.ENABLE
            ),
        )
        options = {
            "quantization": "nncf-static",
            "weight_bits": 7,
            "calibration_users": len(calibration),
            "quantized_matmuls": len(matmuls.quantized),
        }
    # compress_to_fp16 defaults to True: keep the weights as trained.
    ov.save_model(network, str(out_dir / "model.xml"), compress_to_fp16=False)
    return "model.xml", options
