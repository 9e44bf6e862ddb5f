"""`recops compile`: a model (folder or MLflow URI) -> an engine folder for one target.

The compile Job's entrypoint. Only light imports at the top (`recops --help` works in
the operator image); the target name and its toolkit are checked before any heavy work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2
EXIT_MISSING_TOOLKIT = 3
EXIT_PARITY = 4


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def compile_engine(
    model: Annotated[
        str,
        typer.Option(help="Model folder, or an MLflow URI: models:/NAME/VERSION, runs:/ID/PATH."),
    ],
    target: Annotated[
        str,
        typer.Option(
            help="cpu-torch, cpu-onnxruntime, cpu-onnxruntime-int8, cpu-openvino, "
            "cpu-openvino-int8, gpu-onnxruntime-cuda, gpu-tensorrt or edge-int8."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Engine folder to write (must not exist).")],
    data: Annotated[
        str | None,
        typer.Option(
            help="The model's dataset (file or snapshot folder), when its data manifest "
            "does not locate it; its hash must match the model's."
        ),
    ] = None,
    parity_users: Annotated[
        int, typer.Option(min=1, help="Real users of the evaluation split for parity.")
    ] = 1000,
    calibration_users: Annotated[
        int, typer.Option(min=1, help="Real users' sequences for int8 calibration.")
    ] = 512,
    quantization: Annotated[
        str, typer.Option(help="int8 method for ONNX Runtime targets: static or dynamic.")
    ] = "static",
    threads: Annotated[
        int | None, typer.Option(min=1, help="Intra-op threads for the measurements.")
    ] = None,
    latency_seconds: Annotated[
        float, typer.Option(min=0.0, help="Seconds of latency measurement per batch size.")
    ] = 2.0,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model name, recorded in the manifest.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing engine folder.")] = False,
) -> None:
    """Export the model and build, check and measure its engine for one deployment target."""
    from recops_runtime.engines.errors import (
        EngineError,
        MissingToolkitError,
        ParityError,
        UnknownTargetError,
    )
    from recops_runtime.engines.toolkits import resolve_target

    if quantization not in ("static", "dynamic"):
        raise _fail(f"--quantization {quantization!r}: choose static or dynamic", EXIT_BAD_INPUT)
    try:
        # Looked up and checked once, here: no export work for a target this node cannot
        # build, and the builders take the resolved target.
        resolved = resolve_target(target)
    except UnknownTargetError as error:
        raise _fail(f"--target: {error}", EXIT_BAD_INPUT) from error
    except MissingToolkitError as error:
        raise _fail(str(error), EXIT_MISSING_TOOLKIT) from error
    if out.exists() and not overwrite:
        raise _fail(f"--out {out} already exists; remove it or pass --overwrite", EXIT_BAD_INPUT)

    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    # The ONNX exporter's passes log every rewrite at INFO.
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx", "nncf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from recops_runtime.engines.build import BuildOptions
    from recops_trainer.compile.model_source import ExportError
    from recops_trainer.compile.orchestration import compile_model

    options = BuildOptions(
        parity_users=parity_users,
        calibration_users=calibration_users,
        quantization="static" if quantization == "static" else "dynamic",
        threads=threads,
        latency_budget_s=latency_seconds,
    )
    try:
        manifest = compile_model(
            model,
            resolved,
            out,
            data=data,
            options=options,
            model_name=model_name,
            overwrite=overwrite,
        )
    except ParityError as error:
        raise _fail(str(error), EXIT_PARITY) from error
    except MissingToolkitError as error:
        raise _fail(str(error), EXIT_MISSING_TOOLKIT) from error
    except (EngineError, ExportError) as error:
        raise _fail(str(error), EXIT_BAD_INPUT) from error
    summary = {
        "engine": str(out),
        "target": manifest.target,
        "precision": manifest.precision,
        "model_version": manifest.model_version,
        "parity": manifest.parity.model_dump() if manifest.parity else None,
        "latency": [entry.model_dump() for entry in manifest.latency],
    }
    typer.echo(json.dumps(summary, indent=2))
