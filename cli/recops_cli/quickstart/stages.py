"""The stages the quickstart runs, each the `recops` command a cluster's Job or Pod runs,
as a child process; their outputs are read through the typed contracts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.status import Status

from recops_cli.quickstart.facts import Facts
from recops_cli.quickstart.processes import (
    ServingPorts,
    StageError,
    TrafficLoop,
    last_json_object,
    recops_command,
    run_stage,
)
from recops_cli.quickstart.settings import (
    ENGINE_TARGETS,
    REGISTERED_MODEL,
    Size,
    as_yaml,
    rollout_policy,
    train_config,
)
from recops_contracts.engine_manifest import MANIFEST_FILE, EngineManifest
from recops_contracts.rollout_log import RolloutLog
from recops_contracts.tracking import ALIAS_CANDIDATE, ALIAS_CHAMPION, VERDICT_CANDIDATE
from recops_contracts.training_summary import TrainingSummary


@dataclass(frozen=True)
class Registered:
    """Where a tracked `recops train` run and its registered version are."""

    tracking_uri: str
    run_id: str
    version: str


def _registered(summary: TrainingSummary) -> Registered:
    """The run's MLflow coordinates; the quickstart always tracks, so they are there."""
    if summary.tracking_uri and summary.mlflow_run_id and summary.model_version:
        return Registered(summary.tracking_uri, summary.mlflow_run_id, summary.model_version)
    raise StageError(f"`recops train` of {summary.output} registered no model version")


def promote(tracking_uri: str, model: str, version: str) -> None:
    """Point ``champion`` at ``version`` of ``model``; delete ``candidate`` where it points
    at that version too (the operator's promotion does the same).

    One version under both aliases reads as a rollout still to come; a ``candidate`` on
    another (newer) version is one, so it stays.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    client.set_registered_model_alias(model, ALIAS_CHAMPION, version)
    try:
        candidate = client.get_model_version_by_alias(model, ALIAS_CANDIDATE)
    except MlflowException:
        return  # no candidate alias
    if str(candidate.version) == version:
        client.delete_registered_model_alias(model, ALIAS_CANDIDATE)


class Quickstart:
    """One run's work folder, console and facts, and the stages it runs."""

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

    def progress(self, title: str) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            if self._status is not None:
                self._status.update(f"[bold]{title}[/bold] [dim]{line[-100:]}[/dim]")

        return on_line

    # -- stages ----------------------------------------------------------------------------

    def train(
        self, label: str, data: Path, epochs: int, feedback: Path | None = None
    ) -> TrainingSummary:
        config = train_config(
            version_label=label,
            data_file=data,
            epochs=epochs,
            size=self.size,
            workdir=self.workdir,
            feedback_log=feedback,
        )
        path = self.workdir / f"train-{label}.yaml"
        path.write_text(as_yaml(config), encoding="utf-8")
        _, stdout = run_stage(
            recops_command("train", "--config", str(path), "--backend", "ray", "--run-name", label),
            self.logs / f"train-{label}.log",
            self.progress(f"training {label}"),
        )
        summary = TrainingSummary.model_validate(last_json_object(stdout))
        version = _registered(summary).version
        self.facts.trainings[version] = summary
        self.facts.curves[version] = self._curves(summary)
        return summary

    def _curves(self, summary: TrainingSummary) -> dict[str, list[tuple[int, float]]]:
        from mlflow import MlflowClient

        registered = _registered(summary)
        client = MlflowClient(registered.tracking_uri)
        return {
            key: [(m.step, m.value) for m in client.get_metric_history(registered.run_id, key)]
            for key in ("loss", "val_ndcg_at_10")
        }

    def make_champion(self, run: TrainingSummary) -> None:
        """Make ``run``'s version the champion, as a promotion does."""
        registered = _registered(run)
        promote(registered.tracking_uri, REGISTERED_MODEL, registered.version)

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
            manifest = EngineManifest.model_validate_json((out / MANIFEST_FILE).read_bytes())
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
    ) -> tuple[int, RolloutLog]:
        """`recops rollout` of ``candidate`` against ``stable``; (exit code, its log)."""
        policy_path = self.workdir / "rollout-policy.yaml"
        policy_path.write_text(as_yaml(rollout_policy(self.size)))
        code, _ = run_stage(
            recops_command(
                "rollout",
                "--stable",
                stable,
                "--candidate",
                candidate,
                "--admin",
                f"http://127.0.0.1:{ports.admin}",
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
        return code, RolloutLog.model_validate_json(log_path.read_bytes())

    def announce_rollout(self, code: int, log: RolloutLog, stable: str, candidate: str) -> None:
        reason, message = (log.verdict.reason, log.verdict.message) if log.verdict else (None, "")
        if code == 0:
            self.console.print(
                f"[bold green]Promoted version {candidate}[/bold green]: {reason} "
                f"({message}); MLflow alias {ALIAS_CHAMPION} -> {candidate}"
            )
        else:
            self.console.print(
                f"[bold red]Rolled back version {candidate}[/bold red]: {reason} "
                f"({message}); version {stable} keeps serving"
            )

    def announce_gate(self, run: TrainingSummary) -> bool:
        """Print the offline gate's verdict on ``run``; whether it may be rolled out."""
        verdict, reason = (run.gate.verdict, run.gate.reason) if run.gate else (None, None)
        self.console.print(f"  version {run.model_version}: gate says {verdict}: {reason}")
        return verdict == VERDICT_CANDIDATE
