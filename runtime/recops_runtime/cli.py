"""`recops serve` and `recops loadtest` (light imports only: the service loads on call)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _pairs(values: list[str], option: str, sep: str = "=") -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, found, rest = value.partition(sep)
        if not found or not name or not rest:
            raise typer.BadParameter(f"expected NAME{sep}VALUE, got {value!r}", param_hint=option)
        if name in pairs:
            raise typer.BadParameter(f"{name!r} given twice", param_hint=option)
        pairs[name] = rest
    return pairs


def _weights(raw: str | None) -> dict[str, int] | None:
    if raw is None:
        return None
    pairs = _pairs([p.strip() for p in raw.split(",") if p.strip()], "--weights")
    try:
        return {name: int(value) for name, value in pairs.items()}
    except ValueError as exc:
        raise typer.BadParameter(f"weights are integers: {exc}", param_hint="--weights") from exc


def serve(
    engine: Annotated[
        list[str], typer.Option(help="VERSION=DIR: an engine folder to serve (repeatable).")
    ],
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: any free port).")] = 8500,
    http_port: Annotated[int, typer.Option(help="JSON/HTTP and admin port.")] = 8080,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9090,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    weights: Annotated[
        str | None, typer.Option(help="Traffic split, e.g. v1=90,v2=10 (sums to 100).")
    ] = None,
    sticky: Annotated[bool, typer.Option(help="Keep each user on one version.")] = False,
    max_batch_size: Annotated[int, typer.Option(help="Most requests per engine call.")] = 16,
    max_batch_delay_ms: Annotated[
        float, typer.Option(help="Extra wait for a fuller batch, only while requests back up.")
    ] = 0.0,
    max_queue: Annotated[int, typer.Option(help="Queued requests before shedding.")] = 512,
    engine_workers: Annotated[
        int | None,
        typer.Option(
            help="Engine instances per version, scoring in parallel (default: one "
            "per CPU, at most 8; 1 on GPU)."
        ),
    ] = None,
    engine_threads: Annotated[
        int | None,
        typer.Option(help="Intra-op threads per engine instance (default: CPUs / workers)."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis URL for the shared history store.")
    ] = None,
    feedback_log: Annotated[
        Path | None, typer.Option(help="Folder for the rotated feedback log.")
    ] = None,
    feedback_rotate_s: Annotated[
        float,
        typer.Option(help="Seal the open feedback segment after this many seconds."),
    ] = 3600.0,
    drift: Annotated[
        str | None,
        typer.Option(
            help="Drift window and thresholds as JSON, camelCase, e.g. "
            '\'{"window": 5000, "popularityPsi": 0.2}\' (the RecModel\'s '
            "retraining.drift.statistics); the rest keep their defaults."
        ),
    ] = None,
    drain_timeout_s: Annotated[float, typer.Option(help="Most seconds SIGTERM waits.")] = 30.0,
    drain_delay_s: Annotated[
        float, typer.Option(help="Seconds to keep serving, not ready, after SIGTERM.")
    ] = 0.0,
    topk_cache_users: Annotated[
        int,
        typer.Option(
            help="Keep the last top-k list of this many users: an unchanged history costs "
            "no engine call (0: off)."
        ),
    ] = 0,
    processes: Annotated[
        int | None,
        typer.Option(
            help="Server processes sharing the gRPC port, each with its own engine workers "
            "(default: one per usable CPU, at most 8; 1 on GPU)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Serve recommendations over gRPC (and JSON/HTTP) from one or more engine folders."""
    import logging

    from pydantic import ValidationError

    from recops_contracts.drift import DriftThresholds
    from recops_contracts.wire import describe_errors
    from recops_runtime.server import serve_until_signalled
    from recops_runtime.settings import BatchingSettings, ServeSettings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = ServeSettings(
            engines={k: Path(v) for k, v in _pairs(engine, "--engine").items()},
            weights=_weights(weights),
            sticky=sticky,
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            metrics_port=metrics_port,
            batching=BatchingSettings(
                max_batch_size=max_batch_size,
                max_batch_delay_ms=max_batch_delay_ms,
                max_queue=max_queue,
                engine_workers=engine_workers,
                engine_threads=engine_threads,
            ),
            redis_url=redis_url,
            feedback_log=feedback_log,
            feedback_rotate_s=feedback_rotate_s,
            drift=DriftThresholds.model_validate_json(drift) if drift else DriftThresholds(),
            drain_timeout_s=drain_timeout_s,
            drain_delay_s=drain_delay_s,
            processes=processes,
            topk_cache_users=topk_cache_users,
        )
    except ValidationError as exc:
        raise typer.BadParameter(describe_errors(exc)) from exc
    try:
        from recops_runtime.eventloop import run

        code = run(serve_until_signalled(settings))
    except Exception as exc:
        from recops_runtime.errors import ServiceError

        if isinstance(exc, ServiceError):
            typer.echo(f"recops serve: {exc.message}", err=True)
            raise typer.Exit(2) from exc
        raise
    if code:
        raise typer.Exit(code)


def loadtest(
    dataset: Annotated[Path, typer.Option(help="MovieLens ml-1m.txt[.gz] or u.data[.gz].")],
    target: Annotated[str, typer.Option(help="gRPC host:port (loopback only).")] = "127.0.0.1:8500",
    concurrency: Annotated[
        int | None, typer.Option(help="Closed loop: requests always in flight.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Open loop: requests per second.")] = None,
    requests: Annotated[int, typer.Option(help="Most requests to send.")] = 2000,
    duration_s: Annotated[float, typer.Option(help="Most seconds to run.")] = 30.0,
    k: Annotated[int, typer.Option(help="Items per recommendation.")] = 10,
    feedback: Annotated[bool, typer.Option(help="Click when the true next item is hit.")] = True,
    watch: Annotated[
        bool,
        typer.Option(help="Also send the true next item as a watch, recommended or not."),
    ] = False,
    holdout: Annotated[
        int, typer.Option(help="Requests cut each sequence among its last N items.")
    ] = 1,
    sessions: Annotated[
        bool,
        typer.Option(
            help="Replay every user's last --holdout items in order, users interleaved, "
            "instead of a random user and cut per request."
        ),
    ] = False,
    send_history: Annotated[
        bool, typer.Option(help="Send histories (off: use the service's history store).")
    ] = True,
    max_users: Annotated[int | None, typer.Option(help="Replay only the first N users.")] = None,
    processes: Annotated[int, typer.Option(help="Client processes.")] = 1,
    connections: Annotated[
        int,
        typer.Option(
            help="gRPC connections per client process (a multi-process server spreads "
            "connections, not requests, over its processes)."
        ),
    ] = 1,
    timeout_s: Annotated[float, typer.Option(help="Per-request deadline.")] = 5.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON ('-': stdout).")
    ] = None,
) -> None:
    """Replay held-out user sequences against a running service and report per version."""
    from pydantic import ValidationError

    from recops_runtime.eventloop import freeze_heap
    from recops_runtime.loadtest import (
        LoadtestSettings,
        check_loopback,
        run_loadtest,
    )
    from recops_runtime.sequences import read_sequences

    try:
        settings = LoadtestSettings(
            target=target,
            dataset=dataset,
            concurrency=concurrency,
            rate=rate,
            requests=requests,
            duration_s=duration_s,
            k=k,
            feedback=feedback,
            watch=watch,
            sessions=sessions,
            holdout=holdout,
            send_history=send_history,
            max_users=max_users,
            processes=processes,
            connections=connections,
            timeout_s=timeout_s,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not dataset.is_file():
        raise typer.BadParameter(f"{dataset} is not a file", param_hint="--dataset")
    try:
        check_loopback(settings.target)  # before spending a second reading the data set
        sequences = None
        if processes == 1:  # several processes each read the data set themselves
            sequences = read_sequences(dataset, max_users=max_users)
            freeze_heap()
        report = run_loadtest(settings, sequences)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if json_out is not None and str(json_out) == "-":
        typer.echo(report.model_dump_json(indent=2))
        return
    if json_out is not None:
        json_out.write_text(report.model_dump_json(indent=2) + "\n")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recops loadtest ({report.mode} loop, {report.elapsed_s:.1f} s)")
    columns = ("version", "requests", "ok/s", "errors", "p50 ms", "p90 ms", "p99 ms", "hit rate")
    for column in columns:
        table.add_column(column)
    for v in [*report.versions, report.overall]:
        errors = ", ".join(f"{c}={n}" for c, n in sorted(v.errors.items())) or "0"
        table.add_row(
            v.version,
            str(v.requests),
            f"{v.throughput_rps:.0f}",
            errors,
            f"{v.p50_ms:.2f}",
            f"{v.p90_ms:.2f}",
            f"{v.p99_ms:.2f}",
            f"{v.hit_rate:.3f}",
        )
    Console().print(table)
