"""`recops rollout`: a canary on one machine, against a running `recops serve`.

Light imports only at the top (typer, pathlib): the engine, httpx and pydantic load when
the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _load_policy(path: Path | None, interval: str | None) -> Any:
    import re

    import yaml
    from pydantic import ValidationError

    from recops_operator.api.rollout_policy import RolloutPolicy

    raw: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise typer.BadParameter(f"{path} is not a file", param_hint="--policy")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise typer.BadParameter("expected a mapping (a RolloutPolicy)", param_hint="--policy")
        # Accept a whole Rollout or RecModel manifest as well as a bare policy.
        spec = loaded.get("spec", {})
        raw = spec.get("policy") or spec.get("rolloutPolicy") or loaded
    if interval is not None:
        raw = {**raw, "analysisInterval": interval}
    try:
        return RolloutPolicy.model_validate(raw)
    except ValidationError as exc:
        from recops_operator.validation import describe

        message = re.sub(r"(^|; )spec", r"\1policy", describe(exc))
        raise typer.BadParameter(message, param_hint="--policy") from None


def rollout(
    stable: Annotated[str, typer.Option(help="Version that serves now.")],
    candidate: Annotated[str, typer.Option(help="Version to roll out.")],
    admin: Annotated[
        str, typer.Option(help="The runtime's admin API base URL (recops serve --admin-port).")
    ] = "http://127.0.0.1:8081",
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RECOPS_ADMIN_TOKEN_FILE",
            help="File holding the admin API's bearer token (recops serve --admin-token-file).",
        ),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(help="Runtime /metrics URL to read directly (repeatable; one per process)."),
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus base URL: measure with PromQL instead.")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="RolloutPolicy YAML/JSON (or a Rollout/RecModel manifest holding one)."),
    ] = None,
    analysis_interval: Annotated[
        str | None, typer.Option(help="Override the policy's analysisInterval, e.g. 3s.")
    ] = None,
    candidate_engine: Annotated[
        Path | None, typer.Option(help="Engine folder to load as the candidate first.")
    ] = None,
    log: Annotated[Path, typer.Option(help="JSON log of decisions, weights and metrics.")] = Path(
        "rollout-log.json"
    ),
    control: Annotated[
        Path | None,
        typer.Option(help='JSON file polled for {"promote": true}, {"abort": true}, {"retry": N}.'),
    ] = None,
    max_duration_s: Annotated[
        float, typer.Option(help="Abort (all traffic to stable) without a verdict by then.")
    ] = 3600.0,
    unload_loser: Annotated[
        bool,
        typer.Option(help="After the verdict and scaleDownDelaySeconds, unload the other version."),
    ] = False,
) -> None:
    """Shift traffic from STABLE to CANDIDATE step by step on live metrics; promote or roll back.

    Exit status: 0 promoted, 1 rolled back, 2 bad input.
    """
    import asyncio

    pol = _load_policy(policy, analysis_interval)
    if prometheus is None and not metrics:
        metrics = ["http://127.0.0.1:9090/metrics"]
    try:
        status = asyncio.run(
            _run(
                stable,
                candidate,
                admin,
                admin_token_file.read_text().strip() if admin_token_file else None,
                metrics or [],
                prometheus,
                pol,
                candidate_engine,
                log,
                control,
                max_duration_s,
                unload_loser,
            )
        )
    except KeyboardInterrupt:
        raise typer.Exit(1) from None
    raise typer.Exit(0 if status == "Promoted" else 1)


async def _run(
    stable: str,
    candidate: str,
    admin_url: str,
    admin_token: str | None,
    metrics: list[str],
    prometheus: str | None,
    policy: Any,
    candidate_engine: Path | None,
    log_path: Path,
    control: Path | None,
    max_duration_s: float,
    unload_loser: bool,
) -> str:
    import asyncio
    import signal

    from rich.console import Console

    from recops_contracts.rollout_log import RolloutLog
    from recops_operator.analysis_providers import AnalysisProvider
    from recops_operator.analysis_providers.prometheus import PrometheusProvider
    from recops_operator.analysis_providers.scrape import ScrapeProvider
    from recops_operator.api.rollout import RolloutPhase
    from recops_operator.clients.prometheus import PrometheusClient
    from recops_operator.clients.runtime_admin import AdminError, RuntimeAdmin
    from recops_operator.local_rollout.driver import DecisionLog, LocalRollout, verdict
    from recops_operator.rollout.actions import Outcome

    console = Console(highlight=False)
    # The command is this driver's composition root: it builds each client once.
    client = RuntimeAdmin(admin_url, token=admin_token)
    queries = PrometheusClient(prometheus) if prometheus else None
    provider: AnalysisProvider = PrometheusProvider(queries) if queries else ScrapeProvider(metrics)
    try:
        versions = await client.versions()
        if candidate_engine is not None:
            console.print(f"loading {candidate} from {candidate_engine}")
            await client.load_version(candidate, str(candidate_engine))
            versions = await client.versions()
    except AdminError as exc:
        console.print(f"[red]recops rollout: {exc}[/red]")
        raise SystemExit(2) from exc
    missing = [v for v in (stable, candidate) if v not in versions]
    if missing:
        console.print(
            f"[red]recops rollout: version(s) {', '.join(missing)} not loaded in the runtime "
            f"(loaded: {', '.join(versions) or 'none'}); use --candidate-engine DIR[/red]"
        )
        raise SystemExit(2)

    def report(elapsed: float, outcome: Outcome) -> None:
        a, st = outcome.action, outcome.status
        w = a.weights
        line = (
            f"[{elapsed:7.1f}s] step {st.current_step_index} {a.kind:<10} "
            f"stable={w.stable:>3} candidate={w.candidate:>3}  {a.reason}"
        )
        if a.message:
            line += f": {a.message}"
        console.print(line)
        for m in outcome.measurements:
            value = "-" if m.value is None else f"{m.value:.4g}"
            console.print(
                f"    {m.name:<14} {m.phase.value:<12} value={value} ({m.condition}) "
                f"n={m.sample_size}{' dry-run' if m.dry_run else ''}"
                f"{'  ' + m.message if m.message and m.phase.value != 'Successful' else ''}"
            )

    log = DecisionLog(
        log_path,
        RolloutLog(
            stable=stable,
            candidate=candidate,
            policy=policy.to_wire(),
            provider=f"prometheus {prometheus}" if prometheus else f"scrape {', '.join(metrics)}",
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    driver = LocalRollout(
        policy, client, provider, stable, candidate, log, report, max_duration_s, control
    )
    try:
        status = await driver.run(interrupted=stop.is_set)
    except AdminError as exc:
        console.print(f"[red]recops rollout: gave up, the runtime is unreachable: {exc}[/red]")
        raise SystemExit(1) from exc
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    final = verdict(status)
    log.flush(final)
    colour = "green" if status.phase == RolloutPhase.PROMOTED else "red"
    console.print(
        f"[{colour}]{final.phase}: {final.reason}[/{colour}] {final.message} "
        f"({final.weights}); log: {log_path}"
    )
    if unload_loser:
        loser = stable if status.phase == RolloutPhase.PROMOTED else candidate
        await asyncio.sleep(policy.scale_down_delay_seconds)
        try:
            await client.unload_version(loser)
            console.print(f"unloaded {loser}")
        except AdminError as exc:
            console.print(f"[yellow]could not unload {loser}: {exc}[/yellow]")
    await client.aclose()
    if queries is not None:
        await queries.aclose()
    return str(final.phase)
