"""What the RecModel controller decides: training, versions, serving, weights, Ready."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recops_operator.api.recmodel import RecModelSpec, RecModelStatus
from recops_operator.api.rollout import Rollout
from recops_operator.api.trainingrun import TrainingRun
from recops_operator.decisions.recmodel import (
    DeploymentObservation,
    RecModelObservation,
    invalid_spec,
    plan,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SPEC = RecModelSpec.model_validate(
    {
        "dataset": {"format": "synthetic"},
        "targets": [{"name": "cpu-onnxruntime", "replicas": 2}, {"name": "cpu-openvino"}],
    }
)


def run(
    name: str,
    phase: str,
    version: str | None = None,
    verdict: str = "candidate",
    completed: str = "2026-03-01T00:00:00Z",
) -> TrainingRun:
    status: dict[str, Any] = {"phase": phase, "completionTime": completed}
    if version:
        status |= {
            "modelVersion": version,
            "gate": {"verdict": verdict, "reason": "r"},
            "engines": [
                {"target": t, "artifactUri": f"/a/{version}/{t}", "sha256": "0" * 64}
                for t in ("cpu-onnxruntime", "cpu-openvino")
            ],
        }
    return TrainingRun.model_validate(
        {"metadata": {"name": name}, "spec": {"recModel": "movies"}, "status": status}
    )


def rollout(phase: str, candidate: str, stable_w: int = 90, cand_w: int = 10) -> Rollout:
    return Rollout.model_validate(
        {
            "metadata": {"name": f"movies-{candidate}"},
            "spec": {"recModel": "movies", "candidateVersion": candidate},
            "status": {"phase": phase, "weights": {"stable": stable_w, "candidate": cand_w}},
        }
    )


def observe(
    runs: list[TrainingRun] = (),
    rollouts: list[Rollout] = (),  # type: ignore[assignment]
    deployments: dict[str, DeploymentObservation] | None = None,
    now: datetime = NOW,
    generation: int = 1,
) -> RecModelObservation:
    return RecModelObservation(
        now=now,
        generation=generation,
        created=NOW - timedelta(days=1),
        runs=list(runs),
        rollouts=list(rollouts),
        deployments=deployments or {},
    )


def cond(status: RecModelStatus, type_: str) -> tuple[str, str]:
    c = next(c for c in status.conditions or [] if c.type == type_)
    return c.status.value, c.reason


def test_a_new_recmodel_starts_one_initial_run_per_generation() -> None:
    p = plan("ml", "movies", SPEC, None, observe())
    assert p.start_training is not None and p.status.active_training_run == "movies-g1"
    assert p.status.phase.value == "Training" and not p.served
    # The run failed: no new run for the same spec, a new one after the spec changes.
    failed = [run("movies-g1", "Failed")]
    status = p.status.model_copy(update={"active_training_run": None})
    assert plan("ml", "movies", SPEC, status, observe(failed)).start_training is None
    again = plan("ml", "movies", SPEC, status, observe(failed, generation=2))
    assert again.status.active_training_run == "movies-g2"


def test_the_first_version_serves_on_every_target_with_all_traffic() -> None:
    p = plan("ml", "movies", SPEC, None, observe([run("movies-g1", "Succeeded", "1")]))
    assert p.status.stable_version == "1" and p.status.candidate_version is None
    assert [s.name for s in p.served] == ["movies-1-cpu-onnxruntime", "movies-1-cpu-openvino"]
    assert p.weights == {"1": 100} and p.status.weights == "1=100"
    assert cond(p.status, "Serving") == ("False", "DeploymentsNotReady")
    ready = {s.name: DeploymentObservation(1, 1) for s in p.served}
    p2 = plan(
        "ml",
        "movies",
        SPEC,
        p.status,
        observe([run("movies-g1", "Succeeded", "1")], deployments=ready),
    )
    assert cond(p2.status, "Ready") == ("True", "AllComponentsReady")
    assert p2.status.phase.value == "Serving"


def test_a_later_version_becomes_the_candidate_and_a_rollout_sets_the_weights() -> None:
    runs = [
        run("movies-g1", "Succeeded", "1"),
        run("movies-s1", "Succeeded", "2", completed="2026-03-02T00:00:00Z"),
    ]
    first = plan("ml", "movies", SPEC, None, observe(runs[:1])).status
    p = plan("ml", "movies", SPEC, first, observe(runs))
    assert (p.status.stable_version, p.status.candidate_version) == ("1", "2")
    assert p.weights == {"1": 100, "2": 0}
    assert {s.version for s in p.served} == {"1", "2"}
    rolling = plan("ml", "movies", SPEC, p.status, observe(runs, [rollout("Progressing", "2")]))
    assert rolling.weights == {"1": 90, "2": 10} and rolling.status.phase.value == "RollingOut"
    promoted = plan(
        "ml", "movies", SPEC, rolling.status, observe(runs, [rollout("Promoted", "2", 0, 100)])
    )
    assert (promoted.status.stable_version, promoted.status.candidate_version) == ("2", None)
    assert {s.version for s in promoted.served} == {"2"}


def test_a_rejected_version_is_never_served() -> None:
    p = plan(
        "ml",
        "movies",
        SPEC,
        None,
        observe([run("movies-g1", "Succeeded", "1", verdict="rejected")]),
    )
    assert p.status.stable_version is None and not p.served


def test_the_schedule_starts_a_run_when_due() -> None:
    spec = SPEC.model_copy(
        update={"retraining": SPEC.retraining.model_copy(update={"schedule": "0 3 * * *"})}
    )
    status = RecModelStatus(stable_version="1", last_training_time="2026-03-01T03:00:00Z")
    early = plan(
        "ml",
        "movies",
        spec,
        status,
        observe([run("movies-g1", "Succeeded", "1")], now=datetime(2026, 3, 2, 2, 59, tzinfo=UTC)),
    )
    assert early.start_training is None
    due = plan(
        "ml",
        "movies",
        spec,
        status,
        observe([run("movies-g1", "Succeeded", "1")], now=datetime(2026, 3, 2, 3, 1, tzinfo=UTC)),
    )
    assert due.status.active_training_run == "movies-s202603020300"


def test_invalid_spec_fails_the_recmodel() -> None:
    s = invalid_spec(None, "spec.targets: Field required", 1, NOW)
    assert s.phase is not None and s.phase.value == "Failed"
    assert cond(s, "SpecValid") == ("False", "InvalidSpec")
