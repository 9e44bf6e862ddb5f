"""`recops serve` and `recops loadtest` (light imports only: the service loads on call)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from recops_contracts.loadtest import LoadReport


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
    http_port: Annotated[int, typer.Option(help="JSON/HTTP port (never the admin API).")] = 8080,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9090,
    host: Annotated[
        str,
        typer.Option(
            help="Address of the data-plane ports (all interfaces: a gateway reaches the "
            "pod's address; the admin API listens on --admin-host)."
        ),
    ] = "0.0.0.0",
    admin_port: Annotated[
        int, typer.Option(help="Admin API port (versions, traffic; 0: any free port).")
    ] = 8081,
    admin_host: Annotated[
        str,
        typer.Option(
            help="Address the admin API listens on; off loopback --admin-token-file is required."
        ),
    ] = "127.0.0.1",
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_SERVE_ADMIN_TOKEN_FILE",
            help="File holding the bearer token every admin call must carry (a mounted Secret).",
        ),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_SERVE_TLS_CERT_FILE",
            help="PEM certificate chain: gRPC, HTTP and admin speak TLS only.",
        ),
    ] = None,
    tls_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_SERVE_TLS_KEY_FILE", help="PEM private key of the certificate."
        ),
    ] = None,
    tls_client_ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_SERVE_TLS_CLIENT_CA_FILE",
            help="PEM CA bundle: require client certificates it signed (mTLS).",
        ),
    ] = None,
    reflection: Annotated[
        bool, typer.Option(help="Serve gRPC server reflection (what grpcurl describes).")
    ] = True,
    attribution_window_s: Annotated[
        float,
        typer.Option(
            envvar="RECOPS_SERVE_ATTRIBUTION_WINDOW_S",
            help="Seconds after a Recommend in which the same user's feedback on it counts "
            "(online hit, training data).",
        ),
    ] = 3600.0,
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
    http_read_timeout_s: Annotated[
        float, typer.Option(help="Most seconds an HTTP request body may take to arrive.")
    ] = 5.0,
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
    served_max_bytes: Annotated[
        int | None,
        typer.Option(
            envvar="RECOPS_SERVE_SERVED_MAX_BYTES",
            help="Bytes of served lists kept to join clicks (default: 1/16 of the memory "
            "limit, or 64 MiB).",
        ),
    ] = None,
    history_max_bytes: Annotated[
        int | None,
        typer.Option(
            envvar="RECOPS_SERVE_HISTORY_MAX_BYTES",
            help="Bytes of in-memory histories (default: 1/16 of the memory limit, or 64 MiB).",
        ),
    ] = None,
    topk_cache_max_bytes: Annotated[
        int | None,
        typer.Option(
            envvar="RECOPS_SERVE_TOPK_CACHE_MAX_BYTES",
            help="Bytes of cached top-k lists (default: 1/16 of the memory limit, or 64 MiB).",
        ),
    ] = None,
    history_ttl_s: Annotated[
        int,
        typer.Option(
            envvar="RECOPS_SERVE_HISTORY_TTL_S",
            help="Seconds a Redis history lives after its user's last feedback.",
        ),
    ] = 30 * 24 * 3600,
    engines_root: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_SERVE_ENGINES_ROOT",
            help="The folder every admin engineDir must lie in (default: two levels above "
            "each --engine folder).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Serve recommendations over gRPC (and JSON/HTTP) from one or more engine folders."""
    import logging

    from pydantic import ValidationError

    from recops_contracts.drift import DriftThresholds
    from recops_contracts.wire import describe_errors
    from recops_runtime.launch import serve_until_signalled
    from recops_runtime.serve_settings import BatchingSettings, ServeSettings

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
            admin_host=admin_host,
            admin_port=admin_port,
            admin_token_file=admin_token_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            tls_client_ca_file=tls_client_ca_file,
            reflection=reflection,
            attribution_window_s=attribution_window_s,
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
            http_read_timeout_s=http_read_timeout_s,
            drain_delay_s=drain_delay_s,
            processes=processes,
            topk_cache_users=topk_cache_users,
            served_max_bytes=served_max_bytes,
            history_max_bytes=history_max_bytes,
            topk_cache_max_bytes=topk_cache_max_bytes,
            history_ttl_s=history_ttl_s,
            engines_root=engines_root,
        )
    except ValidationError as exc:
        raise typer.BadParameter(describe_errors(exc)) from exc
    try:
        from recops_runtime.eventloop import run

        code = run(serve_until_signalled(settings))
    except Exception as exc:
        from recops_runtime.api.errors import ServiceError

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
    max_error_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Exit 1 when a larger share of the requests fail (0-1)."
        ),
    ] = 0.01,
) -> None:
    """Replay held-out user sequences against a running service and report per version."""
    from pydantic import ValidationError

    from recops_runtime.eventloop import freeze_heap
    from recops_runtime.tools.loadtest import (
        LoadtestSettings,
        check_loopback,
        run_loadtest,
        too_many_errors,
    )
    from recops_runtime.tools.sequences import read_sequences

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
    except TimeoutError as exc:  # the connections were not ready within --timeout-s
        typer.echo(
            f"recops loadtest: {target} did not accept a connection within "
            f"{timeout_s:g} s (--timeout-s)",
            err=True,
        )
        raise typer.Exit(1) from exc
    if json_out is not None and str(json_out) == "-":
        typer.echo(report.model_dump_json(indent=2))
    else:
        if json_out is not None:
            json_out.write_text(report.model_dump_json(indent=2) + "\n")
        _print_report(report)
    if why := too_many_errors(report, max_error_rate):
        typer.echo(f"recops loadtest: {why}", err=True)
        raise typer.Exit(1)


def _print_report(report: LoadReport) -> None:
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
