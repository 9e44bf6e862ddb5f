"""TrainingRun handlers: submit the training job, follow it, read MLflow, compile engines."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from recops_operator.api import reasons
from recops_operator.api.base import GROUP, VERSION
from recops_operator.api.events import Event
from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import (
    PLURAL,
    TrainingPhase,
    TrainingProgress,
    TrainingRunSpec,
    TrainingRunStatus,
)
from recops_operator.clients.mlflow import MlflowError
from recops_operator.controllers.apply import ensure, write_status
from recops_operator.controllers.context import OperatorContext, post_events
from recops_operator.controllers.retry import soon_on_passing_failures
from recops_operator.decisions.jobs import (
    JobObservation,
    engine_from_manifest,
    observe_batch_job,
    observe_ray_job,
    termination_message,
)
from recops_operator.decisions.progress import progress_of
from recops_operator.decisions.trainingrun import (
    CompileObservation,
    Observation,
    Step,
    decide,
    invalid_spec,
)
from recops_operator.render.compile import (
    compile_inputs,
    compile_job_name,
    engine_dir,
    render_compile_job,
)
from recops_operator.render.training_job import (
    TrainingJobInputs,
    render_config_map,
    render_fallback_job,
    render_ray_job,
)
from recops_operator.render.trainingrun import job_inputs, require_shared_storage
from recops_operator.resources import JOBS, PODS, RAYJOBS, RECMODELS, TRAININGRUNS
from recops_operator.validation import InvalidSpecError, parse_spec

TERMINAL = (TrainingPhase.SUCCEEDED.value, TrainingPhase.FAILED.value)
MAX_TRANSITIONS = 4  # per reconcile, so a quick job goes Pending -> ... -> Compiling at once


async def _observe_job(
    ctx: OperatorContext, namespace: str, status: TrainingRunStatus
) -> JobObservation:
    assert status.job_name is not None
    if status.job_kind == "RayJob":
        return observe_ray_job(await ctx.kube.get(RAYJOBS, namespace, status.job_name))
    return observe_batch_job(await ctx.kube.get(JOBS, namespace, status.job_name))


async def _observe_compiles(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    rm: RecModelSpec,
    status: TrainingRunStatus,
    recmodel: str,
) -> dict[str, CompileObservation]:
    seen: dict[str, CompileObservation] = {}
    for target in rm.targets:
        job_name = compile_job_name(name, target.name.value)
        job = observe_batch_job(await ctx.kube.get(JOBS, namespace, job_name))
        engine = None
        if job.state.value == "Succeeded":
            pods = await ctx.kube.list(PODS, namespace, {"job-name": job_name})
            text = termination_message(pods)
            uri = engine_dir(namespace, recmodel, status.model_version or "", target.name.value)
            engine = engine_from_manifest(target.name, uri, text) if text else None
        seen[target.name.value] = CompileObservation(job, engine)
    return seen


async def _progress(ctx: OperatorContext, inputs: TrainingJobInputs) -> TrainingProgress | None:
    """The run's epochs so far from its MLflow run; None when it has not reported (or
    MLflow cannot say now: progress is shown when it can be, never waited for)."""
    assert inputs.mlflow.tracking_uri is not None
    try:
        run = await ctx.mlflow.find_training_result(
            inputs.mlflow.tracking_uri, inputs.training_run_ref
        )
    except MlflowError:
        return None
    return progress_of(run, inputs.model.epochs) if run is not None else None


async def _observe(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    spec: TrainingRunSpec,
    rm: RecModelSpec,
    inputs: TrainingJobInputs,
    status: TrainingRunStatus,
    generation: int | None,
) -> Observation:
    phase = status.phase
    obs: dict[str, Any] = {}
    if status.job_name and phase in (None, TrainingPhase.PENDING, TrainingPhase.RUNNING):
        obs["job"] = await _observe_job(ctx, namespace, status)
    if phase == TrainingPhase.RUNNING and inputs.mlflow.tracking_uri:
        obs["progress"] = await _progress(ctx, inputs)
    if phase == TrainingPhase.EVALUATING:
        assert inputs.mlflow.tracking_uri is not None
        try:
            obs["mlflow"] = await ctx.mlflow.find_training_result(
                inputs.mlflow.tracking_uri, inputs.training_run_ref
            )
        except MlflowError as exc:
            obs["mlflow_error"] = str(exc)
    if phase == TrainingPhase.COMPILING:
        obs["compiles"] = await _observe_compiles(ctx, namespace, name, rm, status, spec.rec_model)
    return Observation(
        now=ctx.clock(),
        generation=generation,
        backoff_limit=spec.backoff_limit,
        ray_available=status.job_kind == "RayJob"
        if status.job_kind
        else await ctx.kube.serves(RAYJOBS),
        mlflow_wait=timedelta(seconds=ctx.settings.mlflow_wait_seconds),
        targets=tuple(t.name.value for t in rm.targets),
        **obs,
    )


async def _act(
    ctx: OperatorContext,
    raw: dict[str, Any],
    step: Step,
    inputs: TrainingJobInputs,
    spec: TrainingRunSpec,
    rm: RecModelSpec,
) -> None:
    s = step.status
    if step.submit_job:
        assert s.job_name is not None
        # A run trains with the config it started with: later spec edits apply to new runs.
        await ensure(ctx.kube, render_config_map(inputs, raw), update=False)
        if s.job_kind == "RayJob":
            assert s.ray_job_id is not None
            job = render_ray_job(inputs, s.job_name, s.ray_job_id, ctx.settings, raw)
        else:
            job = render_fallback_job(inputs, s.job_name, ctx.settings, raw)
        _, outcome = await ensure(ctx.kube, job, update=False)
        if outcome == "created":
            post_events(raw, [Event("Normal", reasons.JOB_CREATED, f"{s.job_kind} {s.job_name}")])
    if step.compile:
        assert s.registered_model and s.model_version
        ci = compile_inputs(
            inputs, s.registered_model, s.model_version, spec.backoff_limit, ctx.settings
        )
        for target in rm.targets:
            await ensure(ctx.kube, render_compile_job(ci, target, ctx.settings, raw), update=False)


async def _set_status(
    ctx: OperatorContext, raw: dict[str, Any], status: TrainingRunStatus
) -> dict[str, Any]:
    meta = raw["metadata"]
    old = raw.get("status") or {}
    new = status.to_wire()
    await write_status(ctx.kube, TRAININGRUNS, meta["namespace"], meta["name"], old, new)
    return {**raw, "status": new}


async def reconcile(ctx: OperatorContext, namespace: str, name: str) -> None:
    """Advance one TrainingRun as far as the world allows right now (idempotent)."""
    async with ctx.lock(f"trainingrun/{namespace}/{name}"):
        for _ in range(MAX_TRANSITIONS):
            raw = await ctx.kube.get(TRAININGRUNS, namespace, name)
            if raw is None:
                return
            generation = raw["metadata"].get("generation")
            try:
                status = TrainingRunStatus.model_validate(raw.get("status") or {})
            except ValidationError:
                status = TrainingRunStatus()
            if status.phase in (TrainingPhase.SUCCEEDED, TrainingPhase.FAILED):
                return
            try:
                spec = parse_spec(TrainingRunSpec, raw.get("spec"))
            except InvalidSpecError as exc:
                await _set_status(ctx, raw, invalid_spec(status, str(exc), generation, ctx.clock()))
                post_events(raw, [Event("Warning", reasons.INVALID_SPEC, str(exc))])
                raise
            rm_raw = await ctx.kube.get(RECMODELS, namespace, spec.rec_model)
            try:
                rm = parse_spec(RecModelSpec, rm_raw.get("spec")) if rm_raw else None
            except InvalidSpecError:
                rm = None
            if rm is None:
                waiting = status.model_copy(
                    update={
                        "phase": TrainingPhase.PENDING,
                        "observed_generation": generation,
                        "reason": reasons.RECMODEL_NOT_READY,
                        "message": f"RecModel {spec.rec_model} is missing or has an invalid spec",
                    }
                )
                await _set_status(ctx, raw, waiting)
                return
            try:
                inputs = job_inputs(ctx.settings, namespace, name, spec, rm)
            except InvalidSpecError as exc:  # the overrides do not fit the RecModel's fields
                await _set_status(ctx, raw, invalid_spec(status, str(exc), generation, ctx.clock()))
                post_events(raw, [Event("Warning", reasons.INVALID_SPEC, str(exc))])
                raise
            obs = await _observe(ctx, namespace, name, spec, rm, inputs, status, generation)
            try:
                if obs.ray_available and status.job_name is None:
                    require_shared_storage(inputs)
            except InvalidSpecError as exc:
                await _set_status(ctx, raw, invalid_spec(status, str(exc), generation, ctx.clock()))
                post_events(raw, [Event("Warning", reasons.INVALID_SPEC, str(exc))])
                raise
            step = decide(status, namespace, name, obs)
            # Status first: the job's identity is recorded before the job is created.
            raw = await _set_status(ctx, raw, step.status)
            post_events(raw, step.events)
            await _act(ctx, raw, step, inputs, spec, rm)
            if step.status.phase == status.phase and not step.submit_job:
                return


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """TrainingRun handlers: edge-triggered on create/resume, level-based on a timer."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def trainingrun_changed(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None  # both kinds are namespaced
        try:
            with soon_on_passing_failures():
                await reconcile(ctx, namespace, name)
        except InvalidSpecError as exc:
            raise kopf.PermanentError(str(exc)) from None

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=ctx.settings.resync_interval,
        registry=registry,
        when=lambda status, **_: status.get("phase") not in TERMINAL,
    )
    async def trainingrun_resync(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None  # both kinds are namespaced
        # An invalid spec is already in status; the update handler acts once it is fixed.
        with contextlib.suppress(InvalidSpecError), soon_on_passing_failures():
            await reconcile(ctx, namespace, name)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    async def trainingrun_deleted(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None  # both kinds are namespaced
        ctx.forget(f"trainingrun/{namespace}/{name}")
