"""The TrainingRun state machine: Pending -> Running -> Evaluating -> Compiling -> Succeeded,
or Failed, as a pure function of the current status and what was observed.

The job's identity (kind, name, Ray job id, attempt) is chosen here and written to status
before the controller creates the job, so a retried or restarted reconcile finds the same
name and never submits twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from recops_contracts.tracking import (
    METRICS,
    TAG_DATASET_HASH,
    TAG_FEEDBACK_INTERACTIONS,
    TAG_GATE_REASON,
    TAG_MODEL_VERSION,
    TAG_PARENT_DATASET_HASH,
    TAG_PROTOCOL,
    TAG_REGISTERED_MODEL,
    VERDICT_CANDIDATE,
    VERDICT_REJECTED,
)
from recops_contracts.training import EvaluationProtocol
from recops_operator.api import reasons
from recops_operator.api.conditions import (
    ConditionStatus,
    aggregate_ready,
    get_condition,
    set_condition,
)
from recops_operator.api.events import Event
from recops_operator.api.recmodel import EngineStatus
from recops_operator.api.tracking import TrainingResult
from recops_operator.api.trainingrun import (
    GateVerdict,
    TrainingPhase,
    TrainingProgress,
    TrainingRunCondition,
    TrainingRunStatus,
)
from recops_operator.decisions.jobs import JobObservation, JobState
from recops_operator.render.common import object_name
from recops_operator.timeutil import status_time

C = TrainingRunCondition
TERMINAL = {TrainingPhase.SUCCEEDED, TrainingPhase.FAILED}


@dataclass(frozen=True)
class CompileObservation:
    job: JobObservation
    engine: EngineStatus | None = None


@dataclass(frozen=True)
class Observation:
    """What the controller saw; fields not relevant to the current phase stay empty."""

    now: datetime
    generation: int | None
    backoff_limit: int
    ray_available: bool
    job: JobObservation | None = None
    mlflow: TrainingResult | None = None
    mlflow_error: str | None = None
    mlflow_wait: timedelta = timedelta(minutes=10)
    targets: tuple[str, ...] = ()
    compiles: dict[str, CompileObservation] = field(default_factory=dict)
    # Read while the job runs, from the MLflow run it logs to (None when not reported).
    progress: TrainingProgress | None = None


@dataclass(frozen=True)
class Step:
    """The new status and what the controller must make exist after writing it."""

    status: TrainingRunStatus
    submit_job: bool = False
    compile: bool = False
    events: tuple[Event, ...] = ()


def job_identity(run_name: str, namespace: str, attempt: int) -> tuple[str, str]:
    """Name of the job object and its Ray submission id, one per attempt."""
    name = object_name(run_name, f"a{attempt}", max_length=47)  # RayJob adds suffixes
    return name, object_name(namespace, name, max_length=128)


class _Builder:
    """Accumulates one transition: status fields, conditions and events."""

    def __init__(self, status: TrainingRunStatus, obs: Observation) -> None:
        self.status = status.model_copy(deep=True)
        self.obs = obs
        self.events: list[Event] = []
        self.submit = False
        self.compile = False

    def cond(self, type: C, status: ConditionStatus | bool, reason: str, message: str = "") -> None:
        self.status.conditions = set_condition(
            self.status.conditions or [],
            type.value,
            status,
            reason,
            message,
            self.obs.generation,
            self.obs.now,
        )

    def phase(self, phase: TrainingPhase, reason: str, message: str, warn: bool = False) -> None:
        if self.status.phase != phase:
            self.events.append(Event("Warning" if warn else "Normal", reason, message))
        self.status.phase, self.status.reason, self.status.message = phase, reason, message
        if phase in TERMINAL and self.status.completion_time is None:
            self.status.completion_time = status_time(self.obs.now)

    def step(self) -> Step:
        self.status.observed_generation = self.obs.generation
        self.status.conditions = aggregate_ready(
            self.status.conditions or [],
            [C.TRAINED, C.GATE_PASSED, C.ENGINES_READY],
            observed_generation=self.obs.generation,
            now=self.obs.now,
        )
        return Step(self.status, self.submit, self.compile, tuple(self.events))


def _submit(b: _Builder, namespace: str, run_name: str, attempt: int, why: str) -> None:
    name, ray_id = job_identity(run_name, namespace, attempt)
    b.status.attempts = attempt
    b.status.job_kind = "RayJob" if b.obs.ray_available else "Job"
    b.status.job_name = name
    b.status.ray_job_id = ray_id if b.obs.ray_available else None
    b.submit = True
    b.cond(
        C.JOB_SUBMITTED, ConditionStatus.UNKNOWN, reasons.SUBMITTING, f"{b.status.job_kind} {name}"
    )
    b.phase(
        TrainingPhase.PENDING, why, f"submitting {b.status.job_kind} {name} (attempt {attempt})"
    )


def _job_failed(b: _Builder, namespace: str, run_name: str, message: str) -> None:
    attempt = b.status.attempts
    if attempt <= b.obs.backoff_limit:
        b.events.append(
            Event("Warning", reasons.JOB_FAILED, f"attempt {attempt} failed: {message}")
        )
        _submit(b, namespace, run_name, attempt + 1, reasons.RETRYING)
        b.status.message = (
            f"retrying (attempt {attempt + 1} of {b.obs.backoff_limit + 1}) after: {message}"
        )
        return
    b.cond(C.JOB_SUBMITTED, False, reasons.JOB_FAILED, message)
    b.cond(C.TRAINED, False, reasons.JOB_FAILED, message)
    b.phase(
        TrainingPhase.FAILED,
        reasons.JOB_FAILED,
        f"{b.status.job_kind} {b.status.job_name} failed after {attempt} attempt(s): {message}",
        warn=True,
    )


def _follow_job(b: _Builder, namespace: str, run_name: str) -> None:
    job = b.obs.job
    if job is None or job.state == JobState.ABSENT:
        if b.status.phase == TrainingPhase.PENDING:
            b.submit = True  # written to status but not created yet (a restart in between)
            return
        _job_failed(b, namespace, run_name, f"{b.status.job_kind} {b.status.job_name} disappeared")
        return
    if job.ray_job_id and not b.status.ray_job_id:
        b.status.ray_job_id = job.ray_job_id
    if job.state == JobState.FAILED:
        _job_failed(b, namespace, run_name, job.message or "the job failed")
        return
    if job.state == JobState.PENDING:
        b.cond(
            C.JOB_SUBMITTED, True, reasons.JOB_CREATED, f"{b.status.job_kind} {b.status.job_name}"
        )
        return
    b.cond(C.JOB_SUBMITTED, True, reasons.JOB_STARTED, f"{b.status.job_kind} {b.status.job_name}")
    b.status.start_time = b.status.start_time or job.start_time or status_time(b.obs.now)
    if b.obs.progress is not None:
        b.status.progress = b.obs.progress
    if job.state == JobState.RUNNING:
        b.phase(
            TrainingPhase.RUNNING,
            reasons.JOB_RUNNING,
            f"{b.status.job_kind} {b.status.job_name} is running",
        )
        return
    b.cond(C.TRAINED, ConditionStatus.UNKNOWN, reasons.WAITING_FOR_MLFLOW, "reading the MLflow run")
    b.phase(
        TrainingPhase.EVALUATING, reasons.JOB_SUCCEEDED, "training finished; reading the MLflow run"
    )


def _evaluate(b: _Builder) -> None:
    result = b.obs.mlflow
    if result is None or not result.complete:
        trained = get_condition(b.status.conditions or [], C.TRAINED.value)
        since = trained.last_transition_time if trained else b.obs.now
        why = b.obs.mlflow_error or (
            "no MLflow run is tagged with this TrainingRun yet"
            if result is None
            else f"MLflow run {result.run_id} has not finished with a gate verdict"
        )
        if b.obs.now - since > b.obs.mlflow_wait:
            b.cond(C.TRAINED, False, reasons.MLFLOW_RUN_NOT_FOUND, why)
            b.phase(TrainingPhase.FAILED, reasons.MLFLOW_RUN_NOT_FOUND, why, warn=True)
        else:
            b.status.message = f"waiting for MLflow: {why}"
        return
    s = b.status
    s.mlflow_run_id = result.run_id
    s.metrics = {k: v for k, v in result.metrics.items() if k in METRICS} or None
    s.dataset_hash = result.tags.get(TAG_DATASET_HASH)
    s.parent_dataset_hash = result.tags.get(TAG_PARENT_DATASET_HASH)
    added = result.tags.get(TAG_FEEDBACK_INTERACTIONS)
    s.feedback_interactions = int(added) if added and added.isdigit() else None
    protocol = result.tags.get(TAG_PROTOCOL)
    s.protocol = EvaluationProtocol(protocol) if protocol in {"sampled", "full"} else None
    s.registered_model = result.tags.get(TAG_REGISTERED_MODEL)
    s.model_version = result.tags.get(TAG_MODEL_VERSION)
    if result.status != "FINISHED":
        msg = f"MLflow run {result.run_id} ended {result.status}"
        b.cond(C.TRAINED, False, reasons.TRAINING_FAILED, msg)
        b.phase(TrainingPhase.FAILED, reasons.TRAINING_FAILED, msg, warn=True)
        return
    verdict = VERDICT_CANDIDATE if result.gate == VERDICT_CANDIDATE else VERDICT_REJECTED
    reason = result.tags.get(TAG_GATE_REASON, "")
    s.gate = GateVerdict(verdict=verdict, reason=reason or verdict)
    b.cond(C.TRAINED, True, reasons.TRAINED, f"MLflow run {result.run_id}")
    if verdict == VERDICT_REJECTED:
        b.cond(C.GATE_PASSED, False, reasons.GATE_REJECTED, reason)
        b.cond(
            C.ENGINES_READY,
            False,
            reasons.GATE_REJECTED,
            "no engines are built for a rejected model",
        )
        b.phase(
            TrainingPhase.SUCCEEDED,
            reasons.GATE_REJECTED,
            f"the offline gate rejected it: {reason}",
        )
        return
    if not (s.registered_model and s.model_version):
        msg = f"MLflow run {result.run_id} passed the gate but names no registered model version"
        b.cond(C.GATE_PASSED, False, reasons.NO_MODEL_VERSION, msg)
        b.phase(TrainingPhase.FAILED, reasons.NO_MODEL_VERSION, msg, warn=True)
        return
    b.cond(C.GATE_PASSED, True, reasons.GATE_PASSED, reason)
    b.cond(C.ENGINES_READY, ConditionStatus.UNKNOWN, reasons.COMPILING, ", ".join(b.obs.targets))
    b.compile = True
    b.phase(
        TrainingPhase.COMPILING,
        reasons.COMPILING,
        f"version {s.model_version}: compiling {', '.join(b.obs.targets)}",
    )


def _follow_compiles(b: _Builder) -> None:
    engines: list[EngineStatus] = []
    for target in b.obs.targets:
        seen = b.obs.compiles.get(target)
        if seen is None or seen.job.state == JobState.ABSENT:
            b.compile = True
            return
        if seen.job.state == JobState.FAILED:
            msg = f"compile for {target} failed: {seen.job.message}"
            b.cond(C.ENGINES_READY, False, reasons.COMPILE_FAILED, msg)
            b.phase(TrainingPhase.FAILED, reasons.COMPILE_FAILED, msg, warn=True)
            return
        if seen.job.state != JobState.SUCCEEDED:
            return
        if seen.engine is None:
            msg = f"compile for {target} succeeded but reported no engine manifest"
            b.cond(C.ENGINES_READY, False, reasons.ENGINE_MANIFEST_MISSING, msg)
            b.phase(TrainingPhase.FAILED, reasons.ENGINE_MANIFEST_MISSING, msg, warn=True)
            return
        engines.append(seen.engine)
    b.status.engines = engines
    b.cond(C.ENGINES_READY, True, reasons.ENGINES_BUILT, ", ".join(b.obs.targets))
    b.phase(
        TrainingPhase.SUCCEEDED,
        reasons.SUCCEEDED,
        f"version {b.status.model_version} trained and compiled for {', '.join(b.obs.targets)}",
    )


def decide(
    status: TrainingRunStatus | None, namespace: str, run_name: str, obs: Observation
) -> Step:
    """One transition of the state machine (or none)."""
    b = _Builder(status or TrainingRunStatus(), obs)
    phase = b.status.phase
    if phase in TERMINAL:
        return Step(b.status)
    b.cond(C.SPEC_VALID, True, reasons.VALID, "")
    if phase is None or b.status.job_name is None:
        _submit(b, namespace, run_name, 1, reasons.SUBMITTING)
    elif phase in {TrainingPhase.PENDING, TrainingPhase.RUNNING}:
        _follow_job(b, namespace, run_name)
    elif phase == TrainingPhase.EVALUATING:
        _evaluate(b)
    elif phase == TrainingPhase.COMPILING:
        _follow_compiles(b)
    return b.step()


def invalid_spec(
    status: TrainingRunStatus | None, message: str, generation: int | None, now: datetime
) -> TrainingRunStatus:
    """The status of a TrainingRun whose spec can never work."""
    s = (status or TrainingRunStatus()).model_copy(deep=True)
    s.conditions = set_condition(
        s.conditions or [],
        C.SPEC_VALID.value,
        False,
        reasons.INVALID_SPEC,
        message,
        generation,
        now,
    )
    s.conditions = set_condition(
        s.conditions, C.READY.value, False, reasons.INVALID_SPEC, message, generation, now
    )
    s.phase, s.reason, s.message = TrainingPhase.FAILED, reasons.INVALID_SPEC, message
    s.observed_generation = generation
    return s
