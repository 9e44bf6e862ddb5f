"""Every object the operator would create for one RecModel, for `recops operator render`:
a dry run users, reviewers and scanners read. It calls the very renderers the controllers
call, as the first pass of a RecModel would: the first TrainingRun and its job, then, as if
its version 1 passed the gate, the compile Jobs and the serving objects."""

from __future__ import annotations

from typing import Any

from recops_operator.api.recmodel import RecModelSpec
from recops_operator.api.trainingrun import TrainingRunSpec
from recops_operator.decisions.trainingrun import job_identity
from recops_operator.render.common import Obj
from recops_operator.render.compile import compile_inputs, render_compile_job
from recops_operator.render.recmodel import render_serving
from recops_operator.render.serving import ServedVersion
from recops_operator.render.training_job import (
    render_config_map,
    render_fallback_job,
    render_ray_job,
)
from recops_operator.render.trainingrun import (
    job_inputs,
    render_training_run,
    require_shared_storage,
)
from recops_operator.settings import OperatorSettings
from recops_operator.validation import check_dns_1035, parse_spec

FIRST_VERSION = "1"


def render_all(
    settings: OperatorSettings, recmodel: dict[str, Any], kuberay: bool = True
) -> list[Obj]:
    """The objects of ``recmodel`` (a RecModel as applied); raises InvalidSpecError, naming
    the field, where the operator would refuse it. ``kuberay``: a RayJob, else a batch Job."""
    meta = recmodel.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "default")
    check_dns_1035("RecModel", name)
    spec = parse_spec(RecModelSpec, recmodel.get("spec"))
    owner: Obj = {**recmodel, "metadata": {**meta, "namespace": namespace}}
    run_name = f"{name}-g1"  # the first run of a RecModel's first spec generation
    run_spec = TrainingRunSpec(rec_model=name)
    run = render_training_run(owner, run_name, run_spec)
    inputs = job_inputs(settings, namespace, run_name, run_spec, spec)
    job_name, ray_job_id = job_identity(run_name, namespace, 1)
    objs: list[Obj] = [run, render_config_map(inputs, run)]
    if kuberay:
        require_shared_storage(inputs)
        objs.append(render_ray_job(inputs, job_name, ray_job_id, settings, run))
    else:
        objs.append(render_fallback_job(inputs, job_name, settings, run))
    registered = inputs.mlflow.registered_model_name or name
    ci = compile_inputs(inputs, registered, FIRST_VERSION, run_spec.backoff_limit, settings)
    objs += [render_compile_job(ci, target, settings, run) for target in spec.targets]
    drift = spec.retraining.drift.statistics
    served = [ServedVersion(namespace, name, FIRST_VERSION, t, drift) for t in spec.targets]
    roles = {t.name.value: (FIRST_VERSION, FIRST_VERSION) for t in spec.targets}
    objs += render_serving(settings, owner, spec, served, roles, {FIRST_VERSION: 100})
    return objs
