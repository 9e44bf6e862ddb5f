"""`recops operator ...`: run the Kubernetes operator (heavy imports stay inside commands)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(help="Run the Kubernetes operator.", no_args_is_help=True)


@app.command("run")
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Watch only this namespace (repeatable)."),
    ] = None,
    standalone: Annotated[
        bool | None, typer.Option("--standalone/--peering", help="Run without peering.")
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            help="Peering priority (the highest replica acts); default: a random one per start."
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="API server URL without credentials (local emulators); default: the "
            "pod's service account, else the kubeconfig."
        ),
    ] = None,
) -> None:
    """Start the operator. Settings come from RECOPS_OPERATOR_* variables; flags override them."""
    import asyncio

    from pydantic import ValidationError

    from recops_contracts.wire import describe_errors
    from recops_operator.clients.kubernetes import KubeConnection
    from recops_operator.runner import configure_logging, connection_from_cluster, run_operator
    from recops_operator.settings import OperatorSettings, env_name

    overrides: dict[str, object] = {}
    if namespace:
        overrides["namespaces"] = namespace
    if standalone is not None:
        overrides["standalone"] = standalone
    if priority is not None:
        overrides["priority"] = priority
    try:
        settings = OperatorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        fields = describe_errors(exc, env_name)
        typer.echo(f"recops operator: invalid settings: {fields}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    try:
        connection = KubeConnection(server=server) if server else connection_from_cluster()
    except RuntimeError as exc:
        typer.echo(f"recops operator: {exc}", err=True)
        raise typer.Exit(2) from None
    asyncio.run(run_operator(settings, connection))


@app.command("render")
def render(
    file: Annotated[
        str, typer.Option("--file", "-f", help="RecModel YAML (other kinds are skipped).")
    ],
    kuberay: Annotated[
        bool,
        typer.Option(
            "--kuberay/--no-kuberay", help="Train in a RayJob (KubeRay), else in a batch Job."
        ),
    ] = True,
) -> None:
    """Print, as YAML documents, every object the operator would create for each RecModel:
    the first TrainingRun and its job, compile Jobs, and the serving objects of version 1."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    from recops_contracts.wire import describe_errors
    from recops_operator.dry_run import render_all
    from recops_operator.settings import OperatorSettings, env_name
    from recops_operator.validation import InvalidSpecError

    try:
        settings = OperatorSettings()
    except ValidationError as exc:
        typer.echo(f"recops operator: invalid settings: {describe_errors(exc, env_name)}", err=True)
        raise typer.Exit(2) from None
    text = sys.stdin.read() if file == "-" else Path(file).read_text()
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    recmodels = [d for d in docs if d.get("kind") == "RecModel"]
    if not recmodels:
        typer.echo(f"recops operator render: {file} holds no RecModel", err=True)
        raise typer.Exit(2)
    objs = []
    for rm in recmodels:
        try:
            objs += render_all(settings, rm, kuberay=kuberay)
        except InvalidSpecError as exc:
            name = (rm.get("metadata") or {}).get("name")
            typer.echo(f"recops operator render: RecModel {name}: InvalidSpec: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(yaml.safe_dump_all(objs, sort_keys=False), nl=False)
