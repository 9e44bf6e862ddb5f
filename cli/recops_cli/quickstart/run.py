"""The quickstart's stages, in order, with progress and timings."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.status import Status
from rich.table import Table

from recops_cli.quickstart.data import choose_data, plain_copy
from recops_cli.quickstart.loop import close_the_loop
from recops_cli.quickstart.processes import (
    Service,
    ServingPorts,
    StageError,
    TrafficLoop,
    free_port,
    last_json_object,
    recops_command,
    run_stage,
)
from recops_cli.quickstart.prometheus import Prometheus
from recops_cli.quickstart.report import Facts, write_report
from recops_cli.quickstart.settings import (
    ENGINE_TARGETS,
    REGISTERED_MODEL,
    SERVING_TARGET,
    SIZES,
    Size,
    rollout_policy,
    train_config,
)


class Quickstart:
    def __init__(self, workdir: Path, size: Size, console: Console) -> None:
        self.workdir = workdir
        self.size = size
        self.console = console
        self.facts = Facts()
        self.logs = workdir / "logs"
        self.loads: list[TrafficLoop] = []
        self._status: Status | None = None

    # -- presentation ------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        with self.console.status(f"[bold]{title}[/bold]") as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None
        elapsed = time.monotonic() - started
        self.facts.stages.append((title, elapsed))
        self.console.print(f"[green]✓[/green] {title} [dim]({elapsed:.1f}s)[/dim]")

    def progress(self, title: str) -> Any:
        def on_line(line: str) -> None:
            if self._status is not None:
                self._status.update(f"[bold]{title}[/bold] [dim]{line[-100:]}[/dim]")

        return on_line

    # -- stages ----------------------------------------------------------------------------

    def train(
        self, label: str, data: Path, epochs: int, feedback: Path | None = None
    ) -> dict[str, Any]:
        config = train_config(
            version_label=label,
            data_file=data,
            epochs=epochs,
            size=self.size,
            workdir=self.workdir,
            feedback_log=feedback,
        )
        path = self.workdir / f"train-{label}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        _, stdout = run_stage(
            recops_command("train", "--config", str(path), "--backend", "ray", "--run-name", label),
            self.logs / f"train-{label}.log",
            self.progress(f"training {label}"),
        )
        summary = last_json_object(stdout)
        version = str(summary["model_version"])
        self.facts.trainings[version] = summary
        self.facts.curves[version] = self._curves(summary)
        return summary

    def _curves(self, summary: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
        from mlflow import MlflowClient

        client = MlflowClient(summary["tracking_uri"])
        return {
            key: [
                (m.step, m.value) for m in client.get_metric_history(summary["mlflow_run_id"], key)
            ]
            for key in ("loss", "val_ndcg_at_10")
        }

    def set_alias(self, tracking_uri: str, alias: str, version: str) -> None:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri).set_registered_model_alias(REGISTERED_MODEL, alias, version)

    def compile(self, version: str, model_dir: Path) -> dict[str, Path]:
        engines: dict[str, Path] = {}
        for target in ENGINE_TARGETS:
            out = self.workdir / "engines" / f"v{version}" / target
            run_stage(
                recops_command(
                    "compile",
                    "--model",
                    str(model_dir),
                    "--target",
                    target,
                    "--out",
                    str(out),
                    "--latency-seconds",
                    str(self.size.latency_seconds),
                    "--model-name",
                    REGISTERED_MODEL,
                    "--threads",
                    "1",
                ),
                self.logs / f"compile-v{version}-{target}.log",
                self.progress(f"compiling v{version} {target}"),
            )
            engines[target] = out
            manifest = json.loads((out / "manifest.json").read_text())
            self.facts.engines.setdefault(version, {})[target] = manifest
        return engines

    def traffic(
        self,
        replay: Path,
        grpc_port: int,
        folder: str,
        *extra: str,
        requests: int | None = None,
    ) -> TrafficLoop:
        """Simulated users replaying ``replay``, one bounded `recops loadtest` after another
        (each of ``requests``, by default 20 seconds' worth)."""
        count = requests or int(self.size.traffic_rate * 20)
        duration = 20.0 if requests is None else count / self.size.traffic_rate + 30.0

        def loadtest_args(index: int) -> list[str]:
            return recops_command(
                "loadtest",
                "--dataset",
                str(replay),
                "--target",
                f"127.0.0.1:{grpc_port}",
                "--rate",
                str(self.size.traffic_rate),
                "--duration-s",
                str(duration),
                "--requests",
                str(count),
                "--feedback",
                *extra,
                "--json",
                str(self.workdir / folder / f"loadtest-{index:03d}.json"),
            )

        load = TrafficLoop(loadtest_args, self.workdir / folder).start()
        self.loads.append(load)
        return load

    def roll_out(
        self, stable: str, candidate: str, engine: Path, ports: ServingPorts, log_path: Path
    ) -> tuple[int, dict[str, Any]]:
        """`recops rollout` of ``candidate`` against ``stable``; (exit code, its log)."""
        policy_path = self.workdir / "rollout-policy.yaml"
        policy_path.write_text(yaml.safe_dump(rollout_policy(self.size), sort_keys=False))
        code, _ = run_stage(
            recops_command(
                "rollout",
                "--stable",
                stable,
                "--candidate",
                candidate,
                "--admin",
                f"http://127.0.0.1:{ports.http}",
                "--metrics",
                f"http://127.0.0.1:{ports.metrics}/metrics",
                "--policy",
                str(policy_path),
                "--candidate-engine",
                str(engine),
                "--log",
                str(log_path),
                "--max-duration-s",
                "300",
            ),
            self.logs / f"rollout-v{candidate}.log",
            self.progress("rolling out"),
            ok_codes=(0, 1),
        )
        log: dict[str, Any] = json.loads(log_path.read_text())
        return code, log

    def announce_rollout(self, code: int, log: dict[str, Any], stable: str, candidate: str) -> None:
        verdict = log.get("verdict", {})
        if code == 0:
            self.console.print(
                f"[bold green]Promoted version {candidate}[/bold green]: {verdict.get('reason')} "
                f"({verdict.get('message', '')}); MLflow alias champion -> {candidate}"
            )
        else:
            self.console.print(
                f"[bold red]Rolled back version {candidate}[/bold red]: {verdict.get('reason')} "
                f"({verdict.get('message', '')}); version {stable} keeps serving"
            )


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
        "--host",
        "127.0.0.1",
        "--grpc-port",
        str(ports.grpc),
        "--http-port",
        str(ports.http),
        "--metrics-port",
        str(ports.metrics),
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
        drift = {"window": size.drift_window, "consecutive": size.drift_consecutive}
        args += ["--drift", json.dumps(drift), "--feedback-rotate-s", "2"]
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
            replay = plain_copy(choice.path, workdir / "data" / "replay-u.data")
        if choice.synthetic:
            console.print(
                "[bold yellow]No MovieLens-100K found: the quickstart runs on SYNTHETIC "
                "interactions.[/bold yellow] Put ml-100k.zip or u.data in $RECOPS_DATA_DIR "
                "(or pass --data u.data) for real data."
            )
        else:
            console.print(f"  data: {choice.description}")

        with qs.stage("train v1 (small configuration, local Ray)"):
            v1 = qs.train("v1", choice.path, size.v1_epochs)
            # The first version has nothing to roll out against: it becomes the champion,
            # as the operator makes a RecModel's first version its stable one.
            qs.set_alias(v1["tracking_uri"], "champion", str(v1["model_version"]))
        stable = str(v1["model_version"])
        console.print(f"  registered {REGISTERED_MODEL} version {stable} (champion)")

        with qs.stage(f"compile v{stable} engines ({', '.join(ENGINE_TARGETS)})"):
            engines_v1 = qs.compile(stable, Path(v1["model_dir"]))

        ports = ServingPorts(free_port(), free_port(), free_port())
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
        candidate = str(v2["model_version"])
        gate = v2.get("gate", {})
        console.print(
            f"  version {candidate}: gate says {gate.get('verdict')}: {gate.get('reason')}"
        )
        if gate.get("verdict") != "candidate":
            console.print(
                "[yellow]The offline gate rejected version 2: nothing to roll out.[/yellow]"
            )
            return _finish(qs, workdir, started)

        with qs.stage(f"compile v{candidate} engines"):
            engines_v2 = qs.compile(candidate, Path(v2["model_dir"]))

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
            qs.set_alias(v2["tracking_uri"], "champion", candidate)
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
        # The watched pairs are the loop's to count, not the report's to list.
        facts.traffic += [r | {"watched": len(r.get("watched", []))} for r in load.reports()]
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
    for version, summary_ in facts.trainings.items():
        sampled = summary_.get("test", {}).get("sampled", {})
        full = summary_.get("test", {}).get("full", {})
        qs.console.print(
            f"  v{version}: sampled NDCG@10 {sampled.get('ndcg@10', float('nan')):.4f}, "
            f"full NDCG@10 {full.get('ndcg@10', float('nan')):.4f}"
        )
    qs.console.print(f"report: {summary} (and PNG plots beside it)")
    for name, address in facts.addresses.items():
        qs.console.print(f"  {name}: {address}")
    return 0
