"""ONNX artifacts: the fp32 graph as one file, and its int8 forms for ONNX Runtime.

Static quantization calibrates activation ranges on real users' sequences (the bundle's
calibration set); dynamic quantization measures them per call. Both quantize the
weight matrices (linear layers), per output channel. The item-scoring product, whose
small errors reorder near-tied items, stays in fp32, and so do attention's softmax and
the layer norms (only MatMul and Gemm are quantized).

Weights are quantized to 7 bits (``reduce_range``). ONNX Runtime computes uint8 x int8
products on AVX2-only x86 with ``vpmaddubsw``, whose 16-bit pair sums saturate when two
large products meet; 7-bit weights bound every pair sum below the limit, so the engine
computes the same function on AVX2, VNNI and AMX processors (see ``engines.cpu``).
Measured on the test model: top-10 overlap with cpu-torch 0.992 with VNNI but 0.954 on
AVX2 with 8-bit weights; 0.988 on both with 7-bit weights.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from recops_runtime.engines.base import INPUT_HISTORY, INPUT_USER_IDS
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


def weight_matmuls(path: Path) -> list[str]:
    """MatMul/Gemm nodes that multiply by a weight matrix, except the item-scoring product.

    Attention's activation-by-activation products stay fp32 (their ranges vary per user),
    and so does the product with the item table nearest the ``scores`` output: int8
    error there reorders near-tied items directly. Found from the graph, so no node name
    from the exporter is assumed.
    """
    onnx = require("onnx", "onnx", "pip install 'recops[runtime]'")
    graph = onnx.load(str(path)).graph
    weights = {init.name for init in graph.initializer}
    produced_by = {out: node for node in graph.node for out in node.output}

    def constant(name: str) -> bool:
        source = produced_by.get(name)
        while source is not None and source.op_type == "Transpose":
            name = source.input[0]
            source = produced_by.get(name)
        return name in weights

    scoring: set[str] = set()
    frontier = [o.name for o in graph.output]
    seen: set[str] = set()
    while frontier and not scoring:
        next_frontier = []
        for tensor in frontier:
            node = produced_by.get(tensor)
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in ("MatMul", "Gemm"):
                scoring.add(node.name)
            next_frontier.extend(node.input)
        frontier = next_frontier
    return [
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm")
        and node.name not in scoring
        and any(constant(i) for i in node.input)
    ]


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
        include = weight_matmuls(prepared)
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
