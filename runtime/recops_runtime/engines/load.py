"""``load_engine``: verify an engine folder, then open it with its target's runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.engines.base import Engine
from recops_runtime.engines.cpu import host_cpu
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.manifest import verify_engine_dir
from recops_runtime.engines.targets import get_target
from recops_runtime.engines.toolkits import check_toolkit

log = logging.getLogger(__name__)


def open_engine(folder: Path, manifest: EngineManifest, threads: int | None) -> Engine:
    """Open the artifact of an already verified manifest (builders call this too)."""
    spec = get_target(manifest.target)
    if manifest.artifact != spec.artifact:
        raise CorruptEngineError(
            f"{folder}: a {spec.name} engine's artifact is {spec.artifact}, the manifest names "
            f"{manifest.artifact}"
        )
    check_toolkit(spec)
    artifact = folder / manifest.artifact
    if spec.runtime == "torch":
        from recops_runtime.engines.torch_engine import TorchEngine

        return TorchEngine(manifest, artifact, threads)
    if spec.runtime == "onnxruntime":
        from recops_runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(manifest, artifact, threads)
    if spec.runtime == "openvino":
        from recops_runtime.engines.openvino_engine import OpenVINOEngine

        return OpenVINOEngine(manifest, artifact, threads)
    from recops_runtime.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(manifest, artifact, threads)


def load_engine(path: Path, threads: int | None = None, target: str | None = None) -> Engine:
    """Load the engine folder ``path``; refuse it when any file differs from its manifest.

    ``threads`` caps the intra-op threads (None: the runtime's default); ``target``, when
    given, must equal the manifest's.
    """
    folder = Path(path)
    manifest = verify_engine_dir(folder, expected_target=target)
    _note_other_processor(folder, manifest)
    return open_engine(folder, manifest, threads)


def _note_other_processor(folder: Path, manifest: EngineManifest) -> None:
    """Say so when an int8 engine serves on another class of int8 kernels than it was
    measured on: its parity was measured there, not here (see ``engines.cpu``)."""
    measured = manifest.measured_on
    if manifest.precision != "int8" or measured is None:
        return
    here = host_cpu()
    if measured.int8_kernels != here.int8_kernels:
        log.warning(
            "%s: %s engine measured on %s int8 kernels, loaded on %s; its parity gate was "
            "passed there (weights are 7-bit, so the two should agree; recompile here to "
            "measure it)",
            folder,
            manifest.target,
            measured.int8_kernels,
            here.int8_kernels,
        )
