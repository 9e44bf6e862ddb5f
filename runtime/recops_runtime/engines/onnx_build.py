"""ONNX artifacts: the fp32 graph as one file, and its int8 forms for ONNX Runtime.

Static quantization calibrates activation ranges on real users' sequences (the bundle's
calibration set); dynamic quantization measures them per call. Both quantize the
weight matrices of the feed-forward layers, per output channel; attention, the last
block, the item-scoring product and the layer norms stay fp32 (``int8_matmuls`` says why).

Weights are quantized to 7 bits (``reduce_range``). ONNX Runtime computes uint8 x int8
products on AVX2-only x86 with ``vpmaddubsw``, whose 16-bit pair sums saturate when two
large products meet; 7-bit weights bound every pair sum below the limit, so the engine
computes the same function on AVX2, VNNI and AMX processors (see ``engines.cpu``).
Measured on the test model with every weight product quantized: top-10 overlap with
cpu-torch 0.992 with VNNI but 0.954 on (emulated) AVX2 with 8-bit weights, 0.988 on both
with 7-bit weights. With the products ``int8_matmuls`` picks: 0.992 on the test model and
0.980 on the ML-1M model, the same scores bit for bit on both kinds of processor.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recops_runtime.engines.base import INPUT_HISTORY, INPUT_USER_IDS
from recops_runtime.engines.errors import EngineError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.toolkits import require

Quantization = Literal["static", "dynamic"]
CALIBRATION_BATCH = 32
WEIGHT_BITS = 7  # reduce_range: portable across int8 kernels (module docstring)


def write_single_file(source: Path, destination: Path) -> None:
    """Copy an ONNX model with its weights inside (the exporter may write them beside)."""
    onnx = require("onnx", "onnx", "pip install 'recops[runtime]'")
    model = onnx.load(str(source), load_external_data=True)
    onnx.save_model(model, str(destination), save_as_external_data=False)


# Activations after which a MatMul belongs to a block's feed-forward layer (and before).
_ACTIVATIONS = frozenset({"Relu", "Gelu", "FastGelu", "Sigmoid", "Tanh", "Erf"})


@dataclass(frozen=True)
class MatMuls:
    """The graph's MatMul/Gemm nodes, and the ones its int8 builds quantize."""

    every: list[str]
    quantized: list[str]


def int8_matmuls(path: Path) -> MatMuls:
    """Which products an int8 build quantizes: the feed-forward layers of every transformer
    block but the last, found from the graph (no exporter node name is assumed).

    Everything else stays fp32, as measured on the ML-1M models (top-10 overlap with the
    fp32 reference, 1,000 users): attention's activation-by-activation products and its
    softmax (ranges that vary per user), the Q/K/V projections, and the last block, whose
    output is scored against the item table directly so that its int8 error reorders
    near-tied items. Quantizing every weight product gave 0.957 (ONNX Runtime) and 0.945
    to 0.950 (OpenVINO), too close to the 0.95 gate, and OpenVINO's AVX2 kernels moved it
    to 0.93; keeping attention and the last block fp32 gave 0.982.
    """
    onnx = require("onnx", "onnx", "pip install 'recops[runtime]'")
    graph = onnx.load(str(path)).graph
    weights = {init.name for init in graph.initializer}
    produced_by = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def constant(name: str) -> bool:
        source = produced_by.get(name)
        while source is not None and source.op_type == "Transpose":
            name = source.input[0]
            source = produced_by.get(name)
        return name in weights

    def next_to_activation(node: Any) -> bool:
        """The layer before an activation (through its bias Add) or the one after it."""
        if any(
            produced_by.get(i) is not None and produced_by[i].op_type in _ACTIVATIONS
            for i in node.input
        ):
            return True
        after = [c for out in node.output for c in consumers.get(out, [])]
        after += [
            c
            for a in after
            if a.op_type == "Add"
            for out in a.output
            for c in consumers.get(out, [])
        ]
        return any(a.op_type in _ACTIVATIONS for a in after)

    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm")]
    feed_forward = [
        n.name for n in products if any(constant(i) for i in n.input) and next_to_activation(n)
    ]
    # Two layers (in and out) per block, in graph order: the last block's pair stays fp32.
    if len(feed_forward) <= 2:
        raise EngineError(
            f"{path.name}: a one-block model has no feed-forward layer outside its last block "
            "to quantize; build the fp32 target (cpu-onnxruntime, cpu-openvino) instead"
        )
    return MatMuls(every=[n.name for n in products], quantized=feed_forward[:-2])


class _Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over real user sequences."""

    def __init__(self, users: UserSequences) -> None:
        self._batches = [
            {
                INPUT_USER_IDS: users.user_ids[i : i + CALIBRATION_BATCH],
                INPUT_HISTORY: users.history[i : i + CALIBRATION_BATCH],
            }
            for i in range(0, len(users), CALIBRATION_BATCH)
        ]
        self._next: Iterator[dict[str, Any]] = iter(self._batches)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self._batches)


def quantize(
    source: Path,
    destination: Path,
    method: Quantization,
    calibration: UserSequences | None,
) -> dict[str, str | int]:
    """Write an int8 ONNX model and return the options used (for the manifest)."""
    quantization = require(
        "onnxruntime.quantization", "cpu-onnxruntime-int8", "pip install 'recops[runtime]'"
    )
    with tempfile.TemporaryDirectory(prefix="recops-quantize-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference and constant folding first, as ONNX Runtime advises: the
        # quantizer needs tensor shapes to pick per-channel axes.
        quantization.shape_inference.quant_pre_process(
            str(source), str(prepared), skip_symbolic_shape=True
        )
        include = int8_matmuls(prepared).quantized
        common: dict[str, Any] = {
            "op_types_to_quantize": ["MatMul", "Gemm"],
            "per_channel": True,
            "nodes_to_quantize": include,
            "weight_type": quantization.QuantType.QInt8,
            "reduce_range": True,
        }
        if method == "dynamic":
            quantization.quantize_dynamic(str(prepared), str(destination), **common)
            return {
                "quantization": "dynamic",
                "weight_bits": WEIGHT_BITS,
                "quantized_matmuls": len(include),
            }
        if calibration is None or len(calibration) == 0:
            raise ValueError("static quantization needs calibration sequences")
        quantization.quantize_static(
            str(prepared),
            str(destination),
            _Calibration(calibration),
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            **common,
        )
    return {
        "quantization": "static",
        "weight_bits": WEIGHT_BITS,
        "calibration_users": len(calibration),
        "quantized_matmuls": len(include),
    }
