"""What each target needs installed, checked before any work, with the fix in the message.

Every import of an engine toolkit happens here or inside a loader/builder function, so
``import recops_runtime.engines`` works in an image that has none of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

from recops_runtime.engines.errors import MissingToolkitError
from recops_runtime.engines.targets import TargetSpec, get_target

_PACKAGES = {
    "torch": "torch",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime-gpu",
    "onnx": "onnx",
    "openvino": "openvino",
    "nncf": "nncf",
    "tensorrt": "tensorrt",
}


def require(module: str, target: str, install: str) -> ModuleType:
    """Import ``module`` or fail naming the target and the package that provides it."""
    if importlib.util.find_spec(module) is None:
        raise MissingToolkitError(f"{target} needs {module}, which is not installed: {install}")
    return importlib.import_module(module)


def require_cuda_onnxruntime(target: str) -> ModuleType:
    ort = require("onnxruntime", target, "pip install 'recops[gpu]' (onnxruntime-gpu)")
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        raise MissingToolkitError(
            f"{target} needs CUDA: this onnxruntime has no CUDAExecutionProvider (it offers "
            f"{', '.join(providers)}); install onnxruntime-gpu (recops[gpu]) with CUDA 12 and "
            "cuDNN 9, and run on a node with an NVIDIA GPU"
        )
    return ort


def require_tensorrt(target: str) -> tuple[ModuleType, ModuleType]:
    """TensorRT and a CUDA device (torch owns the device buffers)."""
    missing = []
    if importlib.util.find_spec("tensorrt") is None:
        missing.append("TensorRT (python package `tensorrt`, from NVIDIA's index)")
    if importlib.util.find_spec("torch") is None:
        missing.append("CUDA through torch (torch with CUDA is not installed)")
    else:
        torch = importlib.import_module("torch")
        if not torch.cuda.is_available():
            missing.append(
                f"CUDA (torch {torch.__version__} sees no CUDA device: no NVIDIA GPU, driver "
                "or CUDA build)"
            )
    if missing:
        raise MissingToolkitError(
            f"{target} cannot run here; missing: {'; '.join(missing)}. Build and serve this "
            "target on a GPU node whose image has TensorRT 10 and torch with CUDA"
        )
    return importlib.import_module("tensorrt"), importlib.import_module("torch")


def check_toolkit(spec: TargetSpec) -> None:
    """Fail fast, before any export or build work, when ``spec`` cannot run here."""
    if spec.runtime == "tensorrt":
        require_tensorrt(spec.name)
    elif spec.runtime == "onnxruntime" and spec.needs_gpu:
        require_cuda_onnxruntime(spec.name)
    elif spec.runtime == "onnxruntime":
        require("onnxruntime", spec.name, "pip install 'recops[runtime]'")
    elif spec.runtime == "openvino":
        require("openvino", spec.name, "pip install 'recops[runtime]'")
    elif spec.runtime == "torch":
        require("torch", spec.name, "pip install torch==2.13.0")


@dataclass(frozen=True)
class ResolvedTarget:
    """A target looked up and its toolkit checked on this machine (``resolve_target``):
    what the builders take, so the name is resolved once, at the entry."""

    spec: TargetSpec


def resolve_target(name: str) -> ResolvedTarget:
    """The target called ``name``, checked to build here; raises UnknownTargetError or
    MissingToolkitError before any work."""
    spec = get_target(name)
    check_toolkit(spec)
    return ResolvedTarget(spec)


def tool_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are skipped)."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(_PACKAGES.get(name, name))
        except PackageNotFoundError:
            continue
    return found
