"""``load_engine``: verify an engine folder, then open it with its target's runtime."""

from __future__ import annotations

from pathlib import Path

from recops_runtime.engines.base import Engine, EngineManifest
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.manifest import verify_engine_dir
from recops_runtime.engines.targets import get_target
from recops_runtime.engines.toolkits import check_toolkit


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
    return open_engine(folder, manifest, threads)
