"""RecModel handlers: start training, serve the stable and candidate versions, report."""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from recops_operator.api import reasons
from recops_operator.api.base import GROUP, VERSION
from recops_operator.api.events import Event
from recops_operator.api.recmodel import PLURAL, RecModelSpec, RecModelStatus
from recops_operator.api.rollout import Rollout
from recops_operator.api.trainingrun import TrainingRun, TrainingRunSpec
from recops_operator.clients.kubernetes import Obj
from recops_operator.controllers.apply import ensure, write_status
from recops_operator.controllers.context import OperatorContext, post_events
from recops_operator.controllers.retry import soon_on_passing_failures
from recops_operator.controllers.route import apply_route
from recops_operator.controllers.user_route import steer_user_route
from recops_operator.decisions.recmodel import (
    DeploymentObservation,
    RecModelObservation,
    invalid_spec,
    plan,
)
from recops_operator.queries import promql
from recops_operator.render.common import LABEL_COMPONENT, LABEL_RECMODEL, LABEL_VERSION
from recops_operator.render.recmodel import render_serving
from recops_operator.render.trainingrun import render_training_run
from recops_operator.resources import (
    DEPLOYMENTS,
    GRPCROUTES,
    HPAS,
    RECMODELS,
    ROLLOUTS,
    SERVICEMONITORS,
    SERVICES,
    TRAININGRUNS,
    Resource,
    resource_of,
)
from recops_operator.retraining.decision import LiveSignals, signals_wanted
from recops_operator.retraining.signals import read_signals
from recops_operator.timeutil import parse_time
from recops_operator.validation import InvalidSpecError, check_dns_1035, parse_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Related:
    """TrainingRuns and Rollouts of a namespace, e.g. from Kopf's in-memory indices."""

    runs: list[Obj]
    rollouts: list[Obj]


def _owned_by(items: list[Obj], recmodel: str, model: type[Any]) -> list[Any]:
    out = []
    for item in items:
        if (item.get("spec") or {}).get("recModel") != recmodel:
            continue
        try:
            out.append(model.model_validate(item))
        except ValidationError:
            continue  # an invalid run or rollout reports that in its own status
    return out


async def _signals(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    spec: RecModelSpec,
    status: RecModelStatus,
    since: datetime,
    now: datetime,
) -> LiveSignals | None:
    """Live traffic, when automatic retraining needs it (drift, minNewInteractions)."""
    wanted = signals_wanted(spec, status)
    if not wanted:
        return None
    return await read_signals(
        ctx.prometheus,
        promql.scope_of(namespace, name),
        stable=status.stable_version,
        window_seconds=wanted.hit_rate_window_seconds,
        since_seconds=(now - since).total_seconds() if wanted.interactions else None,
        statistics=wanted.statistics,
    )


async def _observe(
    ctx: OperatorContext,
    raw: Obj,
    now: datetime,
    known: Related | None,
    spec: RecModelSpec,
    status: RecModelStatus,
) -> RecModelObservation:
    meta = raw["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if known is None:
        known = Related(
            runs=await ctx.kube.list(TRAININGRUNS, namespace),
            rollouts=await ctx.kube.list(ROLLOUTS, namespace),
        )
    runs = _owned_by(known.runs, name, TrainingRun)
    rollouts = _owned_by(known.rollouts, name, Rollout)
    deployments = {
        d["metadata"]["name"]: DeploymentObservation(
            desired=int((d.get("spec") or {}).get("replicas", 1)),
            ready=int((d.get("status") or {}).get("readyReplicas") or 0),
            version=(d["metadata"].get("labels") or {}).get(LABEL_VERSION),
        )
        for d in await ctx.kube.list(
            DEPLOYMENTS, namespace, {LABEL_RECMODEL: name, LABEL_COMPONENT: "serving"}
        )
    }
    created = parse_time(meta["creationTimestamp"]) if meta.get("creationTimestamp") else now
    last = status.last_training_time
    since = parse_time(last) if last else created
    return RecModelObservation(
        now=now,
        generation=meta.get("generation"),
        created=created,
        runs=runs,
        rollouts=rollouts,
        deployments=deployments,
        signals=await _signals(ctx, namespace, name, spec, status, since, now),
    )


async def _prune(
    ctx: OperatorContext, namespace: str, name: str, keep: set[tuple[str, str]]
) -> None:
    """Delete serving objects of versions no longer served (e.g. the old stable after
    promote), and role Services of targets no longer served."""
    serving = {LABEL_RECMODEL: name, LABEL_COMPONENT: "serving"}
    routing = {LABEL_RECMODEL: name, LABEL_COMPONENT: "routing"}
    res: Resource
    for res, selector in (
        (DEPLOYMENTS, serving),
        (SERVICES, serving),
        (HPAS, serving),
        (SERVICES, routing),
    ):
        for obj in await ctx.kube.list(res, namespace, selector):
            obj_name = obj["metadata"]["name"]
            if (res.kind, obj_name) not in keep:
                await ctx.kube.delete(res, namespace, obj_name)


async def reconcile(
    ctx: OperatorContext, namespace: str, name: str, known: Related | None = None
) -> None:
    """Compare desired and observed state of one RecModel and close the gap (idempotent).

    ``known`` spares listing every TrainingRun and Rollout of the namespace on each call;
    without it they are listed from the API.
    """
    async with ctx.lock(f"recmodel/{namespace}/{name}"):
        raw = await ctx.kube.get(RECMODELS, namespace, name)
        if raw is None:
            return
        now = ctx.clock()
        generation = raw["metadata"].get("generation")
        old_status = raw.get("status") or {}
        try:
            status = RecModelStatus.model_validate(old_status)
        except ValidationError:
            status = RecModelStatus()
        try:
            check_dns_1035("RecModel", name)
            spec = parse_spec(RecModelSpec, raw.get("spec"))
        except InvalidSpecError as exc:
            new = invalid_spec(status, str(exc), generation, now)
            if await write_status(ctx.kube, RECMODELS, namespace, name, old_status, new.to_wire()):
                post_events(raw, [Event("Warning", reasons.INVALID_SPEC, str(exc))])
            raise
        p = plan(namespace, name, spec, status, await _observe(ctx, raw, now, known, spec, status))
        new_status = p.status.to_wire()
        if p.start_training is not None:
            # Identity first: the run's name is in status before the run exists.
            assert p.status.active_training_run is not None
            await write_status(ctx.kube, RECMODELS, namespace, name, old_status, new_status)
            old_status = new_status
            await ensure(
                ctx.kube,
                render_training_run(raw, p.status.active_training_run, p.start_training),
                update=False,
            )
        elif p.status.active_training_run:
            # Recreate a run recorded in status but lost before it was created.
            await ensure(
                ctx.kube,
                render_training_run(
                    raw, p.status.active_training_run, TrainingRunSpec(rec_model=name)
                ),
                update=False,
            )
        keep: set[tuple[str, str]] = set()
        serving = render_serving(ctx.settings, raw, spec, p.served, p.roles, p.weights)
        for obj in serving:
            optional = resource_of(obj) in (SERVICEMONITORS, GRPCROUTES)
            if optional and not await ctx.kube.serves(resource_of(obj)):
                continue  # the add-on (Prometheus operator, Gateway API) is not installed
            if resource_of(obj) == GRPCROUTES:
                outcome = await apply_route(ctx.kube, obj, p.rollout_holds_weights)
            else:
                _, outcome = await ensure(ctx.kube, obj)
            keep.add((obj["kind"], obj["metadata"]["name"]))
            if outcome != "unchanged":
                log.info("%s %s/%s %s", obj["kind"], namespace, obj["metadata"]["name"], outcome)
        await _prune(ctx, namespace, name, keep)
        events = list(p.events)
        user_route = spec.rollout_policy.traffic_routing.grpc_route
        # Between rollouts the role backends' weights are the RecModel's; during one, the
        # Rollout's alone (see controllers/route.py).
        if (
            user_route
            and p.role_weights
            and not p.rollout_holds_weights
            and await ctx.kube.serves(GRPCROUTES)
        ):
            targets = list(p.roles)
            why = await steer_user_route(ctx, namespace, name, user_route, targets, p.role_weights)
            if why:
                events.append(Event("Warning", reasons.TRAFFIC_ROUTING_NOT_APPLIED, why))
        await write_status(ctx.kube, RECMODELS, namespace, name, old_status, new_status)
        post_events(raw, events)


RUNS_INDEX = "recops_trainingruns_by_recmodel"
ROLLOUTS_INDEX = "recops_rollouts_by_recmodel"


def _related(namespace: str, name: str, kwargs: dict[str, Any]) -> Related:
    key = (namespace, name)
    runs: kopf.Index[tuple[str, str], Obj] = kwargs[RUNS_INDEX]
    rollouts: kopf.Index[tuple[str, str], Obj] = kwargs[ROLLOUTS_INDEX]
    return Related(runs=list(runs.get(key, [])), rollouts=list(rollouts.get(key, [])))


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """RecModel handlers: edge-triggered on create/update/resume, level-based on a timer.

    TrainingRuns and Rollouts are indexed by their RecModel in memory (from Kopf's watch
    streams), so a reconcile does not list a whole namespace of them from the API.
    """

    def _by_recmodel(namespace: str | None, spec: kopf.Spec, body: kopf.Body) -> Any:
        return {(namespace, spec.get("recModel")): copy.deepcopy(dict(body))}

    @kopf.index(GROUP, VERSION, "trainingruns", id=RUNS_INDEX, registry=registry)
    def index_trainingruns(
        namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
    ) -> Any:
        return _by_recmodel(namespace, spec, body)

    @kopf.index(GROUP, VERSION, "rollouts", id=ROLLOUTS_INDEX, registry=registry)
    def index_rollouts(namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any) -> Any:
        return _by_recmodel(namespace, spec, body)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def recmodel_changed(name: str, namespace: str | None, **kwargs: Any) -> None:
        assert namespace is not None  # RecModels are namespaced
        try:
            with soon_on_passing_failures():
                await reconcile(ctx, namespace, name, _related(namespace, name, kwargs))
        except InvalidSpecError as exc:
            raise kopf.PermanentError(str(exc)) from None

    @kopf.timer(GROUP, VERSION, PLURAL, interval=ctx.settings.resync_interval, registry=registry)
    async def recmodel_resync(name: str, namespace: str | None, **kwargs: Any) -> None:
        assert namespace is not None
        # An invalid spec is already in status; the update handler acts once it is fixed.
        with contextlib.suppress(InvalidSpecError), soon_on_passing_failures():
            await reconcile(ctx, namespace, name, _related(namespace, name, kwargs))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    async def recmodel_deleted(name: str, namespace: str | None, **_: Any) -> None:
        ctx.forget(f"recmodel/{namespace}/{name}")
