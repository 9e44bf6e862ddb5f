"""``recops compile``'s work once its target is resolved: fetch the model, export it,
and build, check and measure the target's engine with the runtime's builder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.engines.build import BuildOptions, build_engine
from recops_runtime.engines.toolkits import ResolvedTarget
from recops_trainer.compile.export import export_bundle
from recops_trainer.compile.model_source import resolve_model_uri


def compile_model(
    uri: str,
    target: ResolvedTarget,
    out_dir: Path,
    *,
    data: str | None = None,
    options: BuildOptions | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
    export_kwargs: dict[str, Any] | None = None,
) -> EngineManifest:
    """Model URI -> engine folder for ``target`` (checked and measured).

    ``target`` was looked up and its toolkit checked by the caller, before any work.
    """
    options = options or BuildOptions()
    with tempfile.TemporaryDirectory(prefix="recops-compile-") as scratch:
        model_dir = resolve_model_uri(uri, Path(scratch) / "model")
        bundle = export_bundle(
            model_dir,
            Path(scratch) / "export",
            data=data,
            parity_users=options.parity_users,
            calibration_users=options.calibration_users,
            model_name=model_name,
            **(export_kwargs or {}),
        )
        return build_engine(bundle, target, out_dir, options, overwrite=overwrite)
