"""`recops operator ...`: run the Kubernetes operator (heavy imports stay inside commands)."""

from __future__ import annotations

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
