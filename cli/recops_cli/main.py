"""`recops`: one command line for every stage.

Each stage's commands live beside the code they drive and are added here. Command
modules import only light packages at the top, so `recops --help` works in every
image (the operator image has no torch); heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recops_cli.quickstart import cli as quickstart_cli
from recops_operator import cli as operator_cli
from recops_operator.local_rollout import cli as rollout_cli
from recops_runtime import cli as runtime_cli
from recops_trainer import cli as trainer_cli
from recops_trainer.compile import cli as compile_cli

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
    chart: Annotated[
        Path | None,
        typer.Option(
            help="Helm chart that ships the CRDs and the operator's RBAC rules; default: "
            "charts/recops beside the CRD folder, when it exists."
        ),
    ] = None,
) -> None:
    """Write (or check) the CustomResourceDefinitions generated from the typed models."""
    from recops_operator.chartgen import check_chart_files, find_chart, write_chart_files
    from recops_operator.crdgen import check_crds, write_crds

    chart = chart or find_chart(out)
    if check:
        stale = [str(out / p) for p in check_crds(out)]
        stale += [str(chart / p) for p in check_chart_files(chart)] if chart else []
        if stale:
            typer.echo(
                f"out of date: {', '.join(stale)}; run `recops crds` and commit",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"{out}/{f' and {chart}/' if chart else ''} match the models")
        return
    for path in write_crds(out) + (write_chart_files(chart) if chart else []):
        typer.echo(f"wrote {path}")


@app.command()
def version() -> None:
    """Print the recops version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("recops"))


app.add_typer(trainer_cli.data_app, name="data")
app.command(name="train")(trainer_cli.train)
app.command(name="tune")(trainer_cli.tune)
app.command(name="evaluate")(trainer_cli.evaluate)
app.command(name="compile")(compile_cli.compile_engine)
app.command(name="serve")(runtime_cli.serve)
app.command(name="loadtest")(runtime_cli.loadtest)
app.command(name="rollout")(rollout_cli.rollout)
app.command(name="quickstart")(quickstart_cli.quickstart)
app.add_typer(operator_cli.app, name="operator")


def main() -> None:
    app()
