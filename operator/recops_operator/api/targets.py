"""Deployment targets: one compiled inference engine each."""

from __future__ import annotations

from enum import StrEnum


class TargetName(StrEnum):
    """The engines recops can build and serve; the runtime's engine registry has the same names."""

    CPU_TORCH = "cpu-torch"
    CPU_ONNXRUNTIME = "cpu-onnxruntime"
    CPU_ONNXRUNTIME_INT8 = "cpu-onnxruntime-int8"
    CPU_OPENVINO = "cpu-openvino"
    CPU_OPENVINO_INT8 = "cpu-openvino-int8"
    GPU_ONNXRUNTIME_CUDA = "gpu-onnxruntime-cuda"
    GPU_TENSORRT = "gpu-tensorrt"
    EDGE_INT8 = "edge-int8"

    @property
    def needs_gpu(self) -> bool:
        return self.value.startswith("gpu-")
