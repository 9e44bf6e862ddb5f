"""The quickstart's stages, in order, with progress and timings."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recops_cli.quickstart.data import announcement, choose_data, plain_copy
from recops_cli.quickstart.loop import close_the_loop
from recops_cli.quickstart.processes import Service, ServingPorts, StageError, recops_command
from recops_cli.quickstart.prometheus import Prometheus
from recops_cli.quickstart.report import write_report
from recops_cli.quickstart.settings import (
    ENGINE_TARGETS,
    REGISTERED_MODEL,
    SERVING_TARGET,
    SIZES,
    Size,
)
from recops_cli.quickstart.stages import Quickstart
from recops_contracts.drift import DriftThresholds
from recops_contracts.tracking import ALIAS_CHAMPION
from recops_contracts.training import EvaluationProtocol


def _reset_workdir(workdir: Path) -> None:
    """A second run starts clean, but keeps downloaded data."""
    if workdir.exists():
        for child in workdir.iterdir():
            if child.name != "data":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)


def _serve_command(
    stable: str, engine: Path, ports: ServingPorts, workdir: Path, size: Size, loop: bool
) -> list[str]:
    args = recops_command(
        "serve",
        "--engine",
        f"{stable}={engine}",
        *ports.flags(),
        "--feedback-log",
        str(workdir / "feedback"),
        # Training runs beside the service: one engine thread per version.
        "--engine-workers",
        "1",
        "--engine-threads",
        "1",
    )
    if loop:
        # Windows sized for simulated traffic, and segments sealed within seconds so that
        # the ingest reads the feedback of the shift without waiting an hour.
        drift = DriftThresholds(window=size.drift_window, consecutive=size.drift_consecutive)
        args += ["--drift", json.dumps(drift.model_dump(by_alias=True, exclude_unset=True))]
        args += ["--feedback-rotate-s", "2"]
    return args


def run_quickstart(
    workdir: Path,
    data: Path | None,
    size_name: str,
    allow_download: bool,
    console: Console,
    keep_serving: bool = False,
    loop: bool = False,
) -> int:
    """Run every stage; returns 0 when the candidate was promoted or rightly rolled back
    (and, with ``loop``, when the loop closed: drift, ingest, training, rollout)."""
    size = SIZES[size_name]
    _reset_workdir(workdir)
    qs = Quickstart(workdir, size, console)
    facts = qs.facts
    service: Service | None = None
    prometheus: Prometheus | None = None
    started = time.monotonic()
    try:
        with qs.stage("data"):
            choice = choose_data(data, workdir, allow_download)
            facts.data, facts.synthetic = choice.description, choice.synthetic
            facts.synthetic_reason = choice.why_synthetic
            replay = plain_copy(choice.path, workdir / "data" / "replay-u.data")
        console.print(announcement(choice))

        with qs.stage("train v1 (small configuration, local Ray)"):
            v1 = qs.train("v1", choice.path, size.v1_epochs)
            # The first version has nothing to roll out against: it becomes the champion,
            # as the operator makes a RecModel's first version its stable one.
            qs.make_champion(v1)
        stable = str(v1.model_version)
        console.print(f"  registered {REGISTERED_MODEL} version {stable} ({ALIAS_CHAMPION})")

        with qs.stage(f"compile v{stable} engines ({', '.join(ENGINE_TARGETS)})"):
            engines_v1 = qs.compile(stable, Path(v1.model_dir))

        ports = ServingPorts()
        with qs.stage(f"serve v{stable} over gRPC and start simulated traffic"):
            service = Service(
                _serve_command(stable, engines_v1[SERVING_TARGET], ports, workdir, size, loop),
                qs.logs / "serve.log",
            )
            service.wait_ready(f"http://127.0.0.1:{ports.http}/readyz")
            traffic = qs.traffic(replay, ports.grpc, "traffic")
            if loop:
                prometheus = Prometheus(workdir / "prometheus", f"127.0.0.1:{ports.metrics}")
                prometheus.wait_ready()
                facts.addresses["Prometheus"] = prometheus.url
        while_running = "" if keep_serving else " (while the quickstart runs; --keep-serving)"
        facts.addresses["gRPC"] = f"127.0.0.1:{ports.grpc}{while_running}"
        facts.addresses["metrics"] = f"http://127.0.0.1:{ports.metrics}/metrics{while_running}"

        with qs.stage("train v2 (better configuration) and apply the offline gate"):
            v2 = qs.train("v2", choice.path, size.v2_epochs)
        candidate = str(v2.model_version)
        if not qs.announce_gate(v2):
            console.print(
                "[yellow]The offline gate rejected version 2: nothing to roll out.[/yellow]"
            )
            return _finish(qs, workdir, started)

        with qs.stage(f"compile v{candidate} engines"):
            engines_v2 = qs.compile(candidate, Path(v2.model_dir))

        with qs.stage(f"roll out v{candidate} on live metrics"):
            code, facts.rollout = qs.roll_out(
                stable,
                candidate,
                engines_v2[SERVING_TARGET],
                ports,
                workdir / "rollout-log.json",
            )
        qs.announce_rollout(code, facts.rollout, stable, candidate)
        serving, serving_run = (candidate, v2) if code == 0 else (stable, v1)
        if code == 0:
            qs.make_champion(v2)
        if loop:
            assert prometheus is not None
            loop_code = close_the_loop(
                qs, serving, serving_run, replay, choice.path, ports, prometheus, traffic
            )
            if loop_code != 0:
                _finish(qs, workdir, started)
                return loop_code
        code = _finish(qs, workdir, started)
        if keep_serving:
            console.print(
                f"[bold]Serving on 127.0.0.1:{ports.grpc} (gRPC), http://127.0.0.1:{ports.http} "
                f"(JSON), metrics on {ports.metrics}. Ctrl-C stops everything.[/bold]"
            )
            with contextlib.suppress(KeyboardInterrupt):
                while service.proc.poll() is None:
                    time.sleep(0.5)
        return code
    except StageError as exc:
        console.print(f"[bold red]quickstart failed:[/bold red] {exc}")
        return 1
    finally:
        for load in qs.loads:
            load.stop()
        if prometheus is not None:
            prometheus.stop()
        if service is not None:
            service.stop()


def _finish(qs: Quickstart, workdir: Path, started: float) -> int:
    """Stop the simulated users, write the report, print the summary; returns 0."""
    facts = qs.facts
    for load in qs.loads:
        load.stop()
        facts.traffic += load.reports()
    tracking = workdir / "mlflow.db"
    facts.addresses["MLflow UI"] = f"mlflow ui --backend-store-uri sqlite:///{tracking.resolve()}"
    facts.addresses["serve again"] = "recops serve --engine VERSION=" + str(
        workdir / "engines" / "v<VERSION>" / SERVING_TARGET
    )
    summary = write_report(facts, workdir / "report")
    table = Table(title="recops quickstart")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, secs in facts.stages:
        table.add_row(name, f"{secs:.1f}")
    table.add_row("[bold]total[/bold]", f"[bold]{time.monotonic() - started:.1f}[/bold]")
    qs.console.print(table)
    for version, trained in facts.trainings.items():
        sampled = trained.test_metric(EvaluationProtocol.SAMPLED, "ndcg@10")
        full = trained.test_metric(EvaluationProtocol.FULL, "ndcg@10")
        nan = float("nan")
        qs.console.print(
            f"  v{version}: sampled NDCG@10 {nan if sampled is None else sampled:.4f}, "
            f"full NDCG@10 {nan if full is None else full:.4f}"
        )
    qs.console.print(f"report: {summary} (and PNG plots beside it)")
    for name, address in facts.addresses.items():
        qs.console.print(f"  {name}: {address}")
    return 0
