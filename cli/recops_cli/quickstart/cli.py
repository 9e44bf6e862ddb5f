"""The `recops quickstart` command."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def quickstart(
    workdir: Annotated[
        Path, typer.Option(help="Folder for the run's data, models, engines, logs and report.")
    ] = Path(".recops/quickstart"),
    data: Annotated[
        Path | None,
        typer.Option(
            help="A MovieLens-100K u.data[.gz] file (default: cache, download, synthetic)."
        ),
    ] = None,
    size: Annotated[
        str, typer.Option(help="default, or small (the end-to-end test's size).")
    ] = "default",
    download: Annotated[
        bool, typer.Option(help="Download MovieLens-100K from GroupLens when not cached.")
    ] = True,
    keep_serving: Annotated[
        bool, typer.Option(help="Keep the runtime serving after the report, until Ctrl-C.")
    ] = False,
    loop: Annotated[
        bool,
        typer.Option(
            help="Then close the continuous-training loop: a shift of taste in the traffic, "
            "drift read from Prometheus, feedback ingested, a third version trained and "
            "rolled out (needs `prometheus` on PATH)."
        ),
    ] = False,
) -> None:
    """Train, compile, serve and roll out two versions on this machine, then write a report."""
    from rich.console import Console

    from recops_cli.quickstart.run import run_quickstart
    from recops_cli.quickstart.settings import SIZES

    if size not in SIZES:
        raise typer.BadParameter(f"choose one of {', '.join(SIZES)}", param_hint="--size")
    # SIGTERM stops it the way Ctrl-C does: every stage and service it started goes too
    # (Python's default would end this process and leave them running).
    signal.signal(signal.SIGTERM, _interrupt)
    code = run_quickstart(
        workdir,
        data,
        size,
        download,
        Console(highlight=False),
        keep_serving=keep_serving,
        loop=loop,
    )
    raise typer.Exit(code)
