"""``build_engine``: one target's engine from an export bundle, measured, then published.

Everything is written to a hidden staging folder beside ``out_dir``; the manifest is
written last, after the parity gate passed, and the folder is renamed into place. A
failed build removes its staging folder, so nothing that looks like an engine is left.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recops_contracts.engine_manifest import ID_MAPS_FILE, EngineManifest, ParityResult
from recops_runtime.engines.base import FloatArray
from recops_runtime.engines.bundle import ExportBundle
from recops_runtime.engines.cpu import host_cpu
from recops_runtime.engines.errors import EngineError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.latency import DEFAULT_BATCHES, measure
from recops_runtime.engines.load import open_engine
from recops_runtime.engines.manifest import file_digests, verify_engine_dir, write_manifest
from recops_runtime.engines.parity import ScoreFn, check, compare, ndcg10, score_all
from recops_runtime.engines.targets import ParityThreshold, TargetSpec
from recops_runtime.engines.toolkits import ResolvedTarget, resolve_target, tool_versions
from recops_runtime.folders import staged_folder

log = logging.getLogger(__name__)

BuildValue = str | int | float | bool


class BuildOptions(BaseModel):
    """How to build and measure; the defaults are what a compile Job uses."""

    model_config = ConfigDict(extra="forbid")

    parity_users: int = Field(default=1000, ge=1, description="Evaluation users for parity.")
    calibration_users: int = Field(default=512, ge=1, description="Users for int8 calibration.")
    quantization: Literal["static", "dynamic"] = Field(
        default="static", description="ONNX Runtime int8 method (cpu-onnxruntime-int8, edge-int8)."
    )
    threads: int | None = Field(default=None, ge=1, description="Intra-op threads when measuring.")
    latency_batches: tuple[int, ...] = DEFAULT_BATCHES
    latency_budget_s: float = Field(default=2.0, ge=0.0, description="Seconds per batch size.")
    parity: ParityThreshold | None = Field(
        default=None, description="Override the target's parity threshold (stricter or looser)."
    )


def _build_artifact(
    spec: TargetSpec, bundle: ExportBundle, staging: Path, options: BuildOptions
) -> tuple[str, dict[str, BuildValue]]:
    """Write the target's artifact into ``staging``; return its name and build options."""
    edge = spec.short_history
    calibration = None
    if spec.precision == "int8":
        calibration = bundle.calibration().head(options.calibration_users)
        if edge:
            calibration = calibration.truncated(bundle.input_spec(edge=True).maxlen)
    if spec.runtime == "torch":
        from recops_runtime.engines import torch_engine

        return torch_engine.build(bundle.reference(), staging), {}
    if spec.runtime == "openvino":
        from recops_runtime.engines import openvino_engine

        name, extra = openvino_engine.build(bundle.onnx(), staging, calibration)
        return name, dict(extra)
    if spec.runtime == "tensorrt":
        from recops_runtime.engines import tensorrt_engine

        name, extra = tensorrt_engine.build(bundle.onnx(), staging, bundle.input_spec().maxlen)
        return name, dict(extra)
    from recops_runtime.engines import onnx_build

    artifact = staging / spec.artifact
    if spec.precision != "int8":
        onnx_build.write_single_file(bundle.onnx(), artifact)
        return spec.artifact, {}
    extra = onnx_build.quantize(bundle.onnx(), artifact, options.quantization, calibration)
    return spec.artifact, dict(extra)


def build_engine(
    bundle: Path | ExportBundle,
    target: ResolvedTarget | str,
    out_dir: Path,
    options: BuildOptions | None = None,
    *,
    overwrite: bool = False,
) -> EngineManifest:
    """Build ``target`` from the export bundle into ``out_dir`` and return its manifest.

    ``target`` is resolved (``resolve_target``) by the caller, or named here and resolved
    now. Raises UnknownTargetError, MissingToolkitError (before any work), ParityError
    (the engine drifts from cpu-torch beyond the target's threshold; nothing is written).
    """
    spec = (target if isinstance(target, ResolvedTarget) else resolve_target(target)).spec
    options = options or BuildOptions()
    bundle = bundle if isinstance(bundle, ExportBundle) else ExportBundle(Path(bundle))
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise EngineError(f"{out_dir} already exists; remove it or pass overwrite")
    with staged_folder(out_dir, "building") as staging:
        artifact, extra = _build_artifact(spec, bundle, staging, options)
        shutil.copyfile(bundle.id_maps, staging / ID_MAPS_FILE)
        if bundle.drift_reference is not None:
            shutil.copyfile(bundle.drift_reference, staging / bundle.drift_reference.name)
        info = bundle.info
        manifest = EngineManifest(
            target=spec.name,
            precision=spec.precision,
            opset=None if spec.runtime == "torch" else info.opset,
            input_spec=bundle.input_spec(edge=spec.short_history),
            model_name=info.model_name,
            model_version=info.model_version,
            model_sha256=info.model_sha256,
            dataset_hash=info.dataset_hash,
            artifact=artifact,
            files=file_digests(staging),
            tool_versions={
                **info.tool_versions,
                **tool_versions("torch", "onnx", "onnxruntime", "openvino", "nncf", "tensorrt"),
                **{k: str(v) for k, v in extra.items() if k in ("gpu", "tensorrt")},
            },
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            measured_on=host_cpu(),
            build_options={**extra, **({"threads": options.threads} if options.threads else {})},
        )
        engine = open_engine(staging, manifest, options.threads)
        try:
            parity = _parity(spec, bundle, engine.score, options)
            latency = [
                measure(
                    engine.score,
                    _engine_users(spec, bundle, options),
                    batch,
                    budget_s=options.latency_budget_s,
                )
                for batch in options.latency_batches
            ]
        finally:
            engine.close()
        manifest = manifest.model_copy(update={"parity": parity, "latency": latency})
        write_manifest(staging, manifest)
        verify_engine_dir(staging, expected_target=spec.name)
        if out_dir.exists() and not overwrite:  # appeared while building
            raise EngineError(f"{out_dir} already exists; remove it or pass overwrite")
    log.info(
        "built %s in %s: top-10 overlap %.4f, NDCG@10 change %+.4f",
        spec.name,
        out_dir,
        parity.top10_overlap,
        parity.ndcg10_delta,
    )
    return manifest


def _engine_users(spec: TargetSpec, bundle: ExportBundle, options: BuildOptions) -> UserSequences:
    users = bundle.evaluation().head(options.parity_users)
    if spec.short_history:
        return users.truncated(bundle.input_spec(edge=True).maxlen)
    return users


def _parity(
    spec: TargetSpec,
    bundle: ExportBundle,
    score: ScoreFn,
    options: BuildOptions,
) -> ParityResult:
    """Compare with cpu-torch on the evaluation users, then apply the target's gate.

    A short-history build is compared with the reference given the same short history
    (what quantization changes); what the shorter history itself costs is recorded as
    the reference's full-history NDCG@10 beside it.
    """
    from recops_runtime.engines.torch_engine import ProgramScorer

    full = bundle.evaluation().head(options.parity_users)
    reference = ProgramScorer(bundle.reference(), options.threads)
    maxlen = bundle.input_spec().maxlen
    engine_users = _engine_users(spec, bundle, options)
    reference_users = engine_users.left_padded(maxlen)
    expected: FloatArray = score_all(reference, reference_users)
    actual = score_all(score, engine_users)
    result = compare(expected, actual, reference_users)
    if spec.short_history:
        result = result.model_copy(
            update={
                "reference_maxlen": engine_users.maxlen,
                "ndcg10_full_history": ndcg10(score_all(reference, full), full),
            }
        )
    check(result, options.parity or spec.parity, spec.name, _advice(spec))
    return result


def _advice(spec: TargetSpec) -> str | None:
    """What to build instead when ``spec`` misses its gate on this processor."""
    if spec.fallback is None:
        return None
    cpu = host_cpu()
    kernels = f", {cpu.int8_kernels} int8 kernels" if spec.precision == "int8" else ""
    return (
        f"{spec.name} cannot meet its gate with this model on this processor "
        f"({cpu.model or cpu.machine}{kernels}); build {spec.fallback} instead, or retry "
        "with more calibration users."
    )
