"""What the RecModel controller decides: training, versions, serving, weights, Ready."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recops_operator.api.recmodel import RecModelSpec, RecModelStatus
from recops_operator.api.rollout import Rollout, Weights
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


def rollout(
    phase: str,
    candidate: str,
    stable_w: int = 90,
    cand_w: int = 10,
    *,
    stable: str | None = None,
    verdict_at: datetime | None = None,
    delay_s: int | None = None,
) -> Rollout:
    """A Rollout's stored state; ``verdict_at``: when it was promoted or aborted."""
    status: dict[str, Any] = {
        "phase": phase,
        "weights": {"stable": stable_w, "candidate": cand_w},
        "stableVersion": stable,
        "candidateVersion": candidate,
    }
    if verdict_at is not None:
        action = {"Promoted": "promote", "Aborted": "abort"}[phase]
        at = verdict_at.isoformat().replace("+00:00", "Z")
        status["history"] = [
            {"time": at, "stepIndex": 1, "action": "setWeights", "reason": "WeightSet"},
            {"time": at, "stepIndex": 2, "action": action, "reason": "Verdict"},
        ]
    spec: dict[str, Any] = {"recModel": "movies", "candidateVersion": candidate}
    if delay_s is not None:
        spec["policy"] = {"scaleDownDelaySeconds": delay_s}
    return Rollout.model_validate(
        {"metadata": {"name": f"movies-{candidate}"}, "spec": spec, "status": status}
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
    assert p.roles == {"cpu-onnxruntime": ("1", "2"), "cpu-openvino": ("1", "2")}
    assert p.role_weights == Weights(stable=100, candidate=0)
    rolling = plan("ml", "movies", SPEC, p.status, observe(runs, [rollout("Progressing", "2")]))
    assert rolling.weights == {"1": 90, "2": 10} and rolling.status.phase.value == "RollingOut"
    assert rolling.role_weights == Weights(stable=90, candidate=10)
    promoted = plan(
        "ml", "movies", SPEC, rolling.status, observe(runs, [rollout("Promoted", "2", 0, 100)])
    )
    assert (promoted.status.stable_version, promoted.status.candidate_version) == ("2", None)
    assert {s.version for s in promoted.served} == {"2"}
    # No candidate: the canary Services select the stable version, at zero weight.
    assert promoted.roles == {"cpu-onnxruntime": ("2", "2"), "cpu-openvino": ("2", "2")}
    assert promoted.role_weights == Weights(stable=100, candidate=0)


def test_a_candidate_built_for_one_target_is_the_canary_there_only() -> None:
    only_cpu = run("movies-s1", "Succeeded", "2", completed="2026-03-02T00:00:00Z")
    assert only_cpu.status is not None and only_cpu.status.engines is not None
    only_cpu.status.engines = only_cpu.status.engines[:1]
    runs = [run("movies-g1", "Succeeded", "1"), only_cpu]
    first = plan("ml", "movies", SPEC, None, observe(runs[:1])).status
    p = plan("ml", "movies", SPEC, first, observe(runs))
    assert p.roles == {"cpu-onnxruntime": ("1", "2"), "cpu-openvino": ("1", "1")}


def stable_1_with_candidate_2() -> tuple[list[TrainingRun], RecModelStatus]:
    runs = [
        run("movies-g1", "Succeeded", "1"),
        run("movies-s1", "Succeeded", "2", completed="2026-03-02T00:00:00Z"),
    ]
    status = plan("ml", "movies", SPEC, None, observe(runs)).status
    assert (status.stable_version, status.candidate_version) == ("1", "2")
    return runs, status


def test_the_replaced_stable_keeps_its_pods_for_the_scale_down_delay() -> None:
    runs, rolling = stable_1_with_candidate_2()
    promoted_at = NOW - timedelta(seconds=10)
    done = [rollout("Promoted", "2", 0, 100, stable="1", verdict_at=promoted_at, delay_s=60)]
    p = plan("ml", "movies", SPEC, rolling, observe(runs, done))
    assert p.status.stable_version == "2"
    # Version 1 keeps its pods, at zero traffic, until 60 s after the promotion.
    assert p.weights == {"2": 100, "1": 0}
    assert {s.version for s in p.served} == {"1", "2"}
    assert p.status.retiring is not None and p.status.retiring[0].version == "1"
    assert p.status.retiring[0].scale_down_at == "2026-03-02T10:00:50.000Z"
    old_pods = {s.name: DeploymentObservation(2, 2, s.version) for s in p.served}
    later = plan(
        "ml", "movies", SPEC, p.status, observe(runs, done, old_pods, NOW + timedelta(minutes=1))
    )
    assert later.weights == {"2": 100} and {s.version for s in later.served} == {"2"}
    assert later.status.retiring is None
    assert [e.message for e in later.events if e.reason == "ScaledDown"] == [
        "version 1 is no longer served: its pods are deleted"
    ]
    # Without the Rollout (deleted) nothing holds the old version either.
    assert {s.version for s in plan("ml", "movies", SPEC, p.status, observe(runs)).served} == {"2"}


def test_an_aborted_candidate_is_scaled_down_after_the_delay_and_back_on_retry() -> None:
    runs, status = stable_1_with_candidate_2()
    aborted = [rollout("Aborted", "2", 100, 0, stable="1", verdict_at=NOW, delay_s=30)]
    soon = plan(
        "ml", "movies", SPEC, status, observe(runs, aborted, now=NOW + timedelta(seconds=5))
    )
    assert soon.weights == {"1": 100, "2": 0} and {s.version for s in soon.served} == {"1", "2"}
    late = plan(
        "ml", "movies", SPEC, status, observe(runs, aborted, now=NOW + timedelta(seconds=31))
    )
    assert late.status.candidate_version == "2"  # still the candidate, for a retry
    assert late.weights == {"1": 100} and {s.version for s in late.served} == {"1"}
    retried = [rollout("Progressing", "2", 100, 0, stable="1")]
    back = plan(
        "ml", "movies", SPEC, late.status, observe(runs, retried, now=NOW + timedelta(minutes=2))
    )
    assert {s.version for s in back.served} == {"1", "2"}


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
