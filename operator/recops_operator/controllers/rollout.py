"""The Rollout controller: thin Kopf handlers around the decision engine.

Each reconcile reads the Rollout, its RecModel, the candidate's Deployments and (when an
analysis is due) Prometheus; asks the engine for the next action; applies it (GRPCRoute
backend weights, the MLflow ``champion`` alias on promotion); then writes the status and
an event. Applying before writing means a crash in between repeats an idempotent action,
and a restarted operator resumes from the stored status at the same step and weights.
While the Rollout is in flight its controller is the only writer of the route's weights
(the RecModel's own route or the user's): the RecModel controller keeps them as they are
(``controllers/route.py``) and, once the Rollout is Promoted, makes the candidate its
stable version. A finished Rollout writes no weights again: they are the RecModel's then.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from recops_operator.analysis_providers.prometheus import PrometheusProvider
from recops_operator.api import reasons
from recops_operator.api.base import GROUP, VERSION
from recops_operator.api.conditions import Condition, set_condition
from recops_operator.api.events import Event
from recops_operator.api.recmodel import RecModel
from recops_operator.api.rollout import PLURAL, RolloutPhase, RolloutSpec, RolloutStatus
from recops_operator.clients.kubernetes import Obj
from recops_operator.clients.mlflow import MlflowError
from recops_operator.controllers.apply import write_status
from recops_operator.controllers.context import OperatorContext, post_events
from recops_operator.controllers.retry import soon_on_passing_failures
from recops_operator.controllers.route import patch_at_version
from recops_operator.controllers.user_route import steer_user_route
from recops_operator.queries import promql
from recops_operator.render.common import LABEL_COMPONENT, LABEL_RECMODEL, LABEL_VERSION
from recops_operator.render.traffic import route_weights, version_backends
from recops_operator.resources import DEPLOYMENTS, RECMODELS, ROLLOUTS
from recops_operator.rollout.actions import Controls, Outcome
from recops_operator.rollout.analysis import measurement_plan
from recops_operator.rollout.controls import controls_of
from recops_operator.rollout.engine import decide
from recops_operator.rollout.status import ALL_STABLE, TERMINAL, initial_status, weights_text
from recops_operator.validation import InvalidSpecError, parse_spec

log = logging.getLogger(__name__)
_WARNINGS = {"abort"}
STICKY_IN_CLUSTER = (
    "trafficRouting.sticky is not applied in a cluster: a GRPCRoute splits each request "
    "by weight on its own; users keep one version only where recops serve's router splits "
    "the traffic (recops rollout against one runtime)"
)
_WARNING_REASONS = {
    reasons.INCONCLUSIVE_LIMIT_EXCEEDED,
    reasons.METRICS_UNAVAILABLE,
    reasons.RETRY_BLOCKED_BY_ABORT,
}


async def _candidate_ready(
    ctx: OperatorContext, namespace: str, recmodel: str, version: str
) -> bool:
    """Every Deployment of the candidate (one per target) has all its replicas ready."""
    selector = {LABEL_RECMODEL: recmodel, LABEL_COMPONENT: "serving", LABEL_VERSION: version}
    deployments = await ctx.kube.list(DEPLOYMENTS, namespace, selector)
    if not deployments:
        return False
    for dep in deployments:
        desired = int((dep.get("spec") or {}).get("replicas", 1))
        ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
        if ready < max(desired, 1):
            return False
    return True


def _spec_valid(old: dict[str, Any]) -> list[Condition]:
    """The stored SpecValid condition, if any."""
    try:
        conditions = RolloutStatus.model_validate(old).conditions or []
    except ValidationError:
        return []
    return [c for c in conditions if c.type == reasons.SPEC_VALID]


async def _waiting(
    ctx: OperatorContext, raw: Obj, old: dict[str, Any], reason: str, message: str
) -> None:
    """Pending before the rollout can start (no RecModel yet, nothing stable to move from)."""
    meta = raw["metadata"]
    status = RolloutStatus.model_validate(old) if old else RolloutStatus()
    status.phase = RolloutPhase.PENDING
    status.reason, status.message = reason, message
    status.observed_generation = meta.get("generation")
    new = status.to_wire()
    if await write_status(ctx.kube, ROLLOUTS, meta["namespace"], meta["name"], old, new):
        post_events(raw, [Event("Normal", reason, message)])


async def _apply_weights(
    ctx: OperatorContext, raw: Obj, rm: RecModel, status: RolloutStatus, outcome: Outcome
) -> bool:
    """Set the route's backend weights; False when the candidate has no backend yet.

    The route is the RecModel's own, or the user's route its policy names, where the
    RecModel's stable and canary Services are the backends.
    """
    namespace, name = rm.metadata.namespace or "", rm.metadata.name
    weights = outcome.action.weights
    targets = [t.name.value for t in rm.spec.targets]
    user_route = rm.spec.rollout_policy.traffic_routing.grpc_route
    if user_route:
        why = await steer_user_route(ctx, namespace, name, user_route, targets, weights)
        if why is None:
            return True
        post_events(raw, [Event("Warning", reasons.TRAFFIC_ROUTING_NOT_APPLIED, why)])
        return weights == ALL_STABLE
    assert status.stable_version is not None and status.candidate_version is not None
    roles = version_backends(name, targets, status.stable_version, status.candidate_version)

    def plan(route: Obj | None) -> tuple[Obj | None, bool]:
        if route is None:
            return None, weights == ALL_STABLE
        steered = route_weights(route, roles, weights)
        if steered.missing_candidate and weights.candidate > 0:
            return None, False
        if not steered.changed:
            return None, True
        log.info("GRPCRoute %s/%s: %s", namespace, name, weights_text(weights))
        return {"spec": {"rules": steered.rules}}, True

    return await patch_at_version(ctx.kube, namespace, name, plan)


async def _start(
    ctx: OperatorContext,
    raw: Obj,
    old: dict[str, Any],
    spec: RolloutSpec,
    rm: RecModel,
    controls: Controls,
    now: datetime,
) -> RolloutStatus | None:
    """The first status of a rollout, or None (status Pending) while it cannot start."""
    stable = spec.stable_version or (rm.status.stable_version if rm.status else None)
    served = rm.status.candidate_version if rm.status else None
    route = rm.spec.rollout_policy.traffic_routing.grpc_route
    asked = spec.policy.traffic_routing.grpc_route if spec.policy else None
    if asked and asked != route:
        # The RecModel steers its route between rollouts too; two owners would fight.
        reason = reasons.GRPC_ROUTE_CONFLICT
        message = (
            f"the Rollout's policy names GRPCRoute {asked}, RecModel {spec.rec_model} routes "
            f"through {f'GRPCRoute {route}' if route else 'its own GRPCRoute'}: name the route "
            "in the RecModel's rolloutPolicy.trafficRouting.grpcRoute (or leave it out here)"
        )
    elif stable is None:
        reason = reasons.NO_STABLE_VERSION
        message = f"RecModel {spec.rec_model} serves no version yet"
    elif stable == spec.candidate_version:
        reason = reasons.CANDIDATE_IS_STABLE
        message = f"version {stable} is already the stable version"
    elif served != spec.candidate_version:
        reason = reasons.CANDIDATE_NOT_SERVED
        message = (
            f"RecModel {spec.rec_model} serves candidate {served or 'none'}, not "
            f"{spec.candidate_version}: a version becomes the candidate when its TrainingRun "
            "passes the offline gate"
        )
    else:
        policy = spec.policy or rm.spec.rollout_policy
        if policy.traffic_routing.sticky:
            post_events(raw, [Event("Warning", reasons.STICKY_NOT_APPLIED, STICKY_IN_CLUSTER)])
        return initial_status(stable, spec.candidate_version, controls, now)
    await _waiting(ctx, raw, old, reason, message)
    return None


async def reconcile(ctx: OperatorContext, namespace: str, name: str) -> None:
    async with ctx.lock(f"rollout/{namespace}/{name}"):
        raw = await ctx.kube.get(ROLLOUTS, namespace, name)
        if raw is None:
            return
        meta = raw["metadata"]
        old: dict[str, Any] = raw.get("status") or {}
        now = ctx.clock()
        try:
            spec = parse_spec(RolloutSpec, raw.get("spec"))
        except InvalidSpecError as exc:
            status = RolloutStatus(
                phase=RolloutPhase.FAILED,
                reason=reasons.INVALID_SPEC,
                message=str(exc),
                observed_generation=meta.get("generation"),
            )
            # From the stored condition, so its transition time stays while it holds.
            status.conditions = set_condition(
                _spec_valid(old),
                reasons.SPEC_VALID,
                False,
                reasons.INVALID_SPEC,
                str(exc),
                meta.get("generation"),
                now,
            )
            if await write_status(ctx.kube, ROLLOUTS, namespace, name, old, status.to_wire()):
                post_events(raw, [Event("Warning", reasons.INVALID_SPEC, str(exc))])
            raise
        rm_raw = await ctx.kube.get(RECMODELS, namespace, spec.rec_model)
        if rm_raw is None:
            await _waiting(
                ctx,
                raw,
                old,
                reasons.RECMODEL_NOT_FOUND,
                f"RecModel {spec.rec_model} does not exist (yet)",
            )
            return
        try:
            rm = RecModel.model_validate(rm_raw)
        except ValidationError:
            await _waiting(
                ctx,
                raw,
                old,
                reasons.RECMODEL_INVALID,
                f"RecModel {spec.rec_model} has an invalid spec; see its status",
            )
            return
        policy = spec.policy or rm.spec.rollout_policy
        controls = controls_of(spec, meta.get("annotations"))
        try:
            status = RolloutStatus.model_validate(old)
        except ValidationError:
            status = RolloutStatus()
        if status.phase == RolloutPhase.FAILED and status.reason == reasons.INVALID_SPEC:
            status = RolloutStatus()  # the spec was fixed: start over
        if status.phase in (None, RolloutPhase.PENDING):
            started = await _start(ctx, raw, old, spec, rm, controls, now)
            if started is None:
                return
            status = started
        assert status.stable_version is not None and status.candidate_version is not None
        ready = await _candidate_ready(ctx, namespace, rm.metadata.name, status.candidate_version)
        plan = measurement_plan(policy, status, now)
        observations = None
        if plan is not None:
            provider = PrometheusProvider(
                ctx.prometheus, promql.scope_of(namespace, rm.metadata.name)
            )
            observations = await provider.observe(
                plan, status.stable_version, status.candidate_version
            )
        outcome = decide(
            policy, status, controls, now, candidate_ready=ready, observations=observations
        )
        # A verdict's weights were set when it was reached; since then they are the
        # RecModel's (a later Rollout's while one runs): a finished Rollout writes none.
        finished = status.phase in TERMINAL and outcome.status.phase in TERMINAL
        if not finished and not await _apply_weights(ctx, raw, rm, status, outcome):
            # The route has no backend for the candidate yet: the same as not ready.
            outcome = decide(
                policy, status, controls, now, candidate_ready=False, observations=observations
            )
            await _apply_weights(ctx, raw, rm, status, outcome)
        if outcome.action.kind == "promote":
            mlflow = rm.spec.mlflow
            uri = mlflow.tracking_uri or ctx.settings.mlflow_tracking_uri
            model = mlflow.registered_model_name or rm.metadata.name
            try:
                await ctx.mlflow.move_champion(uri, model, status.candidate_version)
            except MlflowError as exc:
                post_events(raw, [Event("Warning", reasons.CHAMPION_ALIAS_FAILED, str(exc))])
                raise kopf.TemporaryError(str(exc), delay=10) from exc
        new = outcome.status
        generation = meta.get("generation")
        new.observed_generation = generation
        conditions = set_condition(
            new.conditions or [], reasons.SPEC_VALID, True, reasons.SPEC_VALID, "", now=now
        )
        # Every condition is judged again on each pass, so each is this generation's.
        new.conditions = [
            c.model_copy(update={"observed_generation": generation}) for c in conditions
        ]
        await write_status(ctx.kube, ROLLOUTS, namespace, name, old, new.to_wire())
        if outcome.recorded:
            a = outcome.action
            warn = a.kind in _WARNINGS or a.reason in _WARNING_REASONS
            message = f"{a.message} ({weights_text(a.weights)})".strip()
            post_events(raw, [Event("Warning" if warn else "Normal", a.reason, message)])


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Rollout handlers: edge-triggered on create/update/resume, level-based on a timer."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def rollout_changed(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None
        try:
            with soon_on_passing_failures():
                await reconcile(ctx, namespace, name)
        except InvalidSpecError as exc:
            raise kopf.PermanentError(str(exc)) from None

    @kopf.timer(GROUP, VERSION, PLURAL, interval=ctx.settings.resync_interval, registry=registry)
    async def rollout_resync(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None
        # Timing lives in the status, so a steady tick is all the engine needs; annotations
        # (promote, abort, retry) are picked up here too.
        with contextlib.suppress(InvalidSpecError), soon_on_passing_failures():
            await reconcile(ctx, namespace, name)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    async def rollout_deleted(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None
        ctx.forget(f"rollout/{namespace}/{name}")
