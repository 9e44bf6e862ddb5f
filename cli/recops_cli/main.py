"""`recops`: one command line for every stage.

Each stage's commands live beside the code they drive and are added here. Command
modules import only light packages at the top, so `recops --help` works in every
image (the operator image has no torch); heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="recops",
    help="Train, compile, serve and roll out SSE-PT recommenders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def crds(
    out: Annotated[Path, typer.Option(help="Folder to write the CRD YAML to.")] = Path("crds"),
    check: Annotated[
        bool, typer.Option("--check", help="Exit non-zero when the files differ from the models.")
    ] = False,
) -> None:
    """Write (or check) the CustomResourceDefinitions generated from the typed models."""
    from recops_operator.crdgen import check_crds, write_crds

    if check:
        stale = check_crds(out)
        if stale:
            typer.echo(
                f"out of date in {out}/: {', '.join(stale)}; run `recops crds` and commit",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"{out}/ matches the models")
        return
    for path in write_crds(out):
        typer.echo(f"wrote {path}")


@app.command()
def version() -> None:
    """Print the recops version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("recops"))


def main() -> None:
    app()
