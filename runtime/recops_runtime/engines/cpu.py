"""The processor an engine is built, measured and served on.

Integer kernels differ by instruction set. On x86 without VNNI (AVX2-only processors
such as AMD EPYC Rome or Intel Haswell to Skylake client parts) ONNX Runtime and
OpenVINO multiply uint8 activations by int8 weights with ``vpmaddubsw``, whose 16-bit
intermediate sums saturate when two large products meet; with VNNI (``vpdpbusd``,
AVX-512 or AVX-VNNI) or AMX the sums are 32-bit and never saturate. Arm's dot-product
instructions (``sdot``/``udot``) accumulate in 32 bits as well. An int8 model whose
weights use the full 8-bit range can therefore rank differently on the two kinds of
processor. The int8 builds quantize weights to 7 bits, which cannot saturate, so their
parity holds on both (``onnx_build`` and ``openvino_engine`` say how); the manifest
records the processor the parity was measured on, and a loader on a processor of
another kernel class says so.
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from recops_contracts.engine_manifest import CpuInfo

# Extensions that change which integer or floating-point kernels the engines pick, as
# NumPy's run-time dispatcher names them. NumPy asks the processor itself (cpuid on x86),
# so an emulated or virtualised processor is described as the engines will see it.
# It does not report AVX-VNNI or AMX: processors with those are described by their
# AVX2 or AVX-512 extensions.
KERNEL_FEATURES = (
    "SSE42",
    "AVX",
    "F16C",
    "FMA3",
    "AVX2",
    "AVX512F",
    "AVX512BW",
    "AVX512VL",
    "AVX512VNNI",
    "AVX512BF16",
    "AVX512FP16",
    "ASIMD",
    "ASIMDHP",
    "ASIMDDP",
    "SVE",
)


def _model_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "cpu model"):
            return value.strip()
    return ""


def describe_cpu(features: Mapping[str, bool], machine: str, cpuinfo: str = "") -> CpuInfo:
    """A CpuInfo from NumPy-style feature flags and the text of /proc/cpuinfo."""
    return CpuInfo(
        machine=machine,
        model=_model_name(cpuinfo),
        isa=[name for name in KERNEL_FEATURES if features.get(name)],
    )


@cache
def host_cpu() -> CpuInfo:
    """The processor this process runs on."""
    # NumPy's private module holds the dispatcher's table; it has no public accessor.
    dispatcher = importlib.import_module("numpy._core._multiarray_umath")
    features: Mapping[str, bool] = getattr(dispatcher, "__cpu_features__", {})
    source = Path("/proc/cpuinfo")
    text = source.read_text(encoding="utf-8", errors="replace") if source.exists() else ""
    return describe_cpu(features, platform.machine(), text)
