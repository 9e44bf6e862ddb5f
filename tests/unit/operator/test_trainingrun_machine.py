"""The TrainingRun state machine, one transition at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recops_operator.api.recmodel import EngineStatus
from recops_operator.api.targets import TargetName
from recops_operator.api.tracking import TrainingResult
from recops_operator.api.trainingrun import TrainingPhase, TrainingRunStatus
from recops_operator.decisions.jobs import JobObservation, JobState
from recops_operator.decisions.trainingrun import (
    CompileObservation,
    Observation,
    decide,
    invalid_spec,
    job_identity,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CANDIDATE_TAGS = {
    "recops.gate": "candidate",
    "recops.gate_reason": "0.61 >= 0.55",
    "recops.registered_model": "movies",
    "recops.model_version": "3",
    "recops.protocol": "sampled",
    "recops.dataset_hash": "abc",
}


def obs(**kw: object) -> Observation:
    base: dict[str, object] = {
        "now": NOW,
        "generation": 1,
        "backoff_limit": 1,
        "ray_available": True,
        "targets": ("cpu-onnxruntime",),
    }
    return Observation(**{**base, **kw})  # type: ignore[arg-type]


def cond(status: TrainingRunStatus, type_: str) -> tuple[str, str, str]:
    c = next(c for c in status.conditions or [] if c.type == type_)
    return c.status.value, c.reason, c.message


def running(attempts: int = 1) -> TrainingRunStatus:
    name, ray_id = job_identity("movies-g1", "ml", attempts)
    return TrainingRunStatus(
        phase=TrainingPhase.RUNNING,
        job_kind="RayJob",
        job_name=name,
        ray_job_id=ray_id,
        attempts=attempts,
    )


def test_a_new_run_records_its_job_identity_before_submitting() -> None:
    step = decide(None, "ml", "movies-g1", obs())
    s = step.status
    assert step.submit_job and s.phase == TrainingPhase.PENDING
    assert (s.job_kind, s.job_name, s.ray_job_id, s.attempts) == (
        "RayJob",
        "movies-g1-a1",
        "ml-movies-g1-a1",
        1,
    )
    again = decide(s, "ml", "movies-g1", obs(job=JobObservation(JobState.ABSENT)))
    assert again.submit_job and again.status.job_name == "movies-g1-a1"  # same name, no new one


def test_without_kuberay_the_job_is_a_batch_job() -> None:
    s = decide(None, "ml", "movies-g1", obs(ray_available=False)).status
    assert s.job_kind == "Job" and s.ray_job_id is None


def test_job_progress_moves_the_phase() -> None:
    pending = decide(None, "ml", "movies-g1", obs()).status
    step = decide(pending, "ml", "movies-g1", obs(job=JobObservation(JobState.RUNNING)))
    assert step.status.phase == TrainingPhase.RUNNING and not step.submit_job
    assert cond(step.status, "JobSubmitted")[0] == "True"
    step = decide(step.status, "ml", "movies-g1", obs(job=JobObservation(JobState.SUCCEEDED)))
    assert step.status.phase == TrainingPhase.EVALUATING
    assert [e.reason for e in step.events] == ["JobSucceeded"]


def test_a_failed_job_is_retried_then_the_run_fails_with_its_message() -> None:
    step = decide(
        running(), "ml", "movies-g1", obs(job=JobObservation(JobState.FAILED, "OOMKilled"))
    )
    assert step.submit_job and step.status.attempts == 2
    assert step.status.job_name == "movies-g1-a2" and "OOMKilled" in (step.status.message or "")
    step = decide(
        running(2), "ml", "movies-g1", obs(job=JobObservation(JobState.FAILED, "DeadlineExceeded"))
    )
    assert not step.submit_job and step.status.phase == TrainingPhase.FAILED
    assert cond(step.status, "Trained") == ("False", "JobFailed", "DeadlineExceeded")
    assert step.status.completion_time is not None


def test_a_vanished_job_counts_as_a_failed_attempt() -> None:
    step = decide(running(), "ml", "movies-g1", obs(job=JobObservation(JobState.ABSENT)))
    assert step.submit_job and step.status.attempts == 2


def evaluating(now: datetime = NOW) -> TrainingRunStatus:
    s = decide(running(), "ml", "movies-g1", obs(now=now, job=JobObservation(JobState.SUCCEEDED)))
    return s.status


def test_the_mlflow_verdict_fills_status_and_starts_compiling() -> None:
    result = TrainingResult(
        "r1", "FINISHED", {"test_sampled_ndcg_at_10": 0.61, "loss": 1.0}, CANDIDATE_TAGS
    )
    step = decide(evaluating(), "ml", "movies-g1", obs(mlflow=result))
    s = step.status
    assert step.compile and s.phase == TrainingPhase.COMPILING
    assert (s.mlflow_run_id, s.registered_model, s.model_version) == ("r1", "movies", "3")
    assert s.metrics == {"test_sampled_ndcg_at_10": 0.61}
    assert s.gate is not None and s.gate.verdict == "candidate"
    assert cond(s, "GatePassed")[0] == "True"
    assert (s.dataset_hash, s.parent_dataset_hash, s.feedback_interactions) == ("abc", None, None)
    # Trained on the data set plus serving feedback: the lineage reaches the status.
    lineage = {
        **CANDIDATE_TAGS,
        "recops.parent_dataset_hash": "p0",
        "recops.feedback_interactions": "42",
    }
    fed = decide(
        evaluating(), "ml", "movies-g1", obs(mlflow=TrainingResult("r1", "FINISHED", {}, lineage))
    )
    assert (fed.status.parent_dataset_hash, fed.status.feedback_interactions) == ("p0", 42)


def test_a_rejected_model_succeeds_without_engines() -> None:
    tags = {**CANDIDATE_TAGS, "recops.gate": "rejected", "recops.gate_reason": "0.4 < 0.55"}
    step = decide(
        evaluating(), "ml", "movies-g1", obs(mlflow=TrainingResult("r1", "FINISHED", {}, tags))
    )
    assert not step.compile and step.status.phase == TrainingPhase.SUCCEEDED
    assert cond(step.status, "GatePassed") == ("False", "GateRejected", "0.4 < 0.55")
    assert cond(step.status, "Ready")[0] == "False"


def test_waiting_for_mlflow_ends_after_the_configured_time() -> None:
    s = evaluating()
    step = decide(s, "ml", "movies-g1", obs(mlflow_error="connection refused"))
    assert step.status.phase == TrainingPhase.EVALUATING
    assert "connection refused" in (step.status.message or "")
    late = obs(now=NOW + timedelta(minutes=11), mlflow_error="connection refused")
    step = decide(s, "ml", "movies-g1", late)
    assert step.status.phase == TrainingPhase.FAILED and step.status.reason == "MlflowRunNotFound"


def test_compiles_end_in_engines_or_in_the_failing_target() -> None:
    result = TrainingResult("r1", "FINISHED", {}, CANDIDATE_TAGS)
    compiling = decide(evaluating(), "ml", "movies-g1", obs(mlflow=result)).status
    engine = EngineStatus(target=TargetName.CPU_ONNXRUNTIME, artifact_uri="/a", sha256="0" * 64)
    done = {"cpu-onnxruntime": CompileObservation(JobObservation(JobState.SUCCEEDED), engine)}
    step = decide(compiling, "ml", "movies-g1", obs(compiles=done))
    assert step.status.phase == TrainingPhase.SUCCEEDED and step.status.engines == [engine]
    assert cond(step.status, "Ready")[0] == "True"
    failed = {"cpu-onnxruntime": CompileObservation(JobObservation(JobState.FAILED, "no GPU"))}
    step = decide(compiling, "ml", "movies-g1", obs(compiles=failed))
    assert step.status.phase == TrainingPhase.FAILED
    assert cond(step.status, "EnginesReady") == (
        "False",
        "CompileFailed",
        "compile for cpu-onnxruntime failed: no GPU",
    )


@pytest.mark.parametrize("phase", [TrainingPhase.SUCCEEDED, TrainingPhase.FAILED])
def test_terminal_phases_never_change(phase: TrainingPhase) -> None:
    s = TrainingRunStatus(phase=phase, job_name="x", attempts=1)
    step = decide(s, "ml", "movies-g1", obs(job=JobObservation(JobState.ABSENT)))
    assert step.status == s and not step.submit_job and not step.events


def test_invalid_spec_names_the_field_and_fails() -> None:
    s = invalid_spec(None, "spec.backoffLimit: too big", 2, NOW)
    assert s.phase == TrainingPhase.FAILED and s.reason == "InvalidSpec"
    assert cond(s, "SpecValid") == ("False", "InvalidSpec", "spec.backoffLimit: too big")


def test_condition_times_move_only_when_the_status_flips() -> None:
    first = decide(None, "ml", "movies-g1", obs()).status
    later = obs(now=NOW + timedelta(minutes=5), job=JobObservation(JobState.PENDING, "queued"))
    second = decide(first, "ml", "movies-g1", later).status
    third = decide(
        second,
        "ml",
        "movies-g1",
        obs(now=NOW + timedelta(minutes=9), job=JobObservation(JobState.PENDING)),
    ).status
    t2 = next(c for c in second.conditions or [] if c.type == "JobSubmitted")
    t3 = next(c for c in third.conditions or [] if c.type == "JobSubmitted")
    assert t2.last_transition_time == t3.last_transition_time == NOW + timedelta(minutes=5)
