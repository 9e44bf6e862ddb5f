"""The target registry: what each deployment target builds, runs on, and must match.

The names equal the operator's ``TargetName`` values (a test keeps them in step); the
runtime cannot import the operator, so the registry is its own source of truth here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from recops_runtime.engines.errors import UnknownTargetError

Runtime = Literal["torch", "onnxruntime", "openvino", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class ParityThreshold:
    """How far an engine may drift from the cpu-torch reference before its build fails."""

    min_top10_overlap: float
    max_ndcg10_delta: float
    max_abs_diff: float | None = None


# fp32 engines compute the same function; int8 and fp16 trade a little ranking for speed.
FP32_PARITY = ParityThreshold(min_top10_overlap=0.99, max_ndcg10_delta=0.005, max_abs_diff=1e-3)
FP16_PARITY = ParityThreshold(min_top10_overlap=0.97, max_ndcg10_delta=0.01)
INT8_PARITY = ParityThreshold(min_top10_overlap=0.95, max_ndcg10_delta=0.02)

# History length of the edge build: a quarter of ML-1M's 200 keeps most of the signal
# (recent items dominate the last position's attention) at a quarter of the compute.
EDGE_MAXLEN = 50


@dataclass(frozen=True)
class TargetSpec:
    name: str
    runtime: Runtime
    precision: Precision
    device: Literal["cpu", "gpu"]
    artifact: str
    parity: ParityThreshold
    description: str
    short_history: bool = False
    # The target to build instead where this one cannot meet its parity gate.
    fallback: str | None = None

    @property
    def needs_gpu(self) -> bool:
        return self.device == "gpu"


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "cpu-torch",
            "torch",
            "fp32",
            "cpu",
            "model.pt2",
            FP32_PARITY,
            "the eager PyTorch reference (a torch.export program)",
        ),
        TargetSpec(
            "cpu-onnxruntime",
            "onnxruntime",
            "fp32",
            "cpu",
            "model.onnx",
            FP32_PARITY,
            "ONNX Runtime, all graph optimizations, fixed intra-op threads",
        ),
        TargetSpec(
            "cpu-onnxruntime-int8",
            "onnxruntime",
            "int8",
            "cpu",
            "model.onnx",
            INT8_PARITY,
            "ONNX Runtime, int8 weights (static: calibrated on real user sequences, or dynamic)",
            fallback="cpu-onnxruntime",
        ),
        TargetSpec(
            "cpu-openvino",
            "openvino",
            "fp32",
            "cpu",
            "model.xml",
            FP32_PARITY,
            "OpenVINO IR, fp32 inference precision",
        ),
        TargetSpec(
            "cpu-openvino-int8",
            "openvino",
            "int8",
            "cpu",
            "model.xml",
            INT8_PARITY,
            "OpenVINO IR quantized with NNCF on real user sequences",
            fallback="cpu-openvino",
        ),
        TargetSpec(
            "gpu-onnxruntime-cuda",
            "onnxruntime",
            "fp32",
            "gpu",
            "model.onnx",
            FP32_PARITY,
            "ONNX Runtime with the CUDA execution provider",
        ),
        TargetSpec(
            "gpu-tensorrt",
            "tensorrt",
            "fp16",
            "gpu",
            "model.plan",
            FP16_PARITY,
            "a TensorRT fp16 engine, built on the GPU model that serves it",
            fallback="gpu-onnxruntime-cuda",
        ),
        TargetSpec(
            "edge-int8",
            "onnxruntime",
            "int8",
            "cpu",
            "model.onnx",
            INT8_PARITY,
            f"int8 ONNX with the last {EDGE_MAXLEN} items of history, for devices",
            short_history=True,
            fallback="cpu-onnxruntime",
        ),
    )
}

# Every target a machine without a GPU builds and runs, in registry order.
CPU_TARGETS: tuple[str, ...] = tuple(name for name, spec in TARGETS.items() if not spec.needs_gpu)


def get_target(name: str) -> TargetSpec:
    """The target called ``name``, or an error that lists the valid names."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(
            f"unknown target {name!r}: choose one of {', '.join(TARGETS)}"
        ) from None
