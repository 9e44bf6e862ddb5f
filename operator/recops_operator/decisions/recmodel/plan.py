"""One planning pass over a RecModel: from what the controller observed to the next status,
the serving objects' inputs and the events, deciding each part in its turn."""

from __future__ import annotations

from dataclasses import dataclass, field

from recops_operator.api import reasons
from recops_operator.api.events import Event
from recops_operator.api.recmodel import (
    RecModelCondition,
    RecModelSpec,
    RecModelStatus,
)
from recops_operator.api.rollout import Weights
from recops_operator.api.trainingrun import TrainingRunSpec
from recops_operator.decisions.recmodel.observation import RecModelObservation
from recops_operator.decisions.recmodel.report import condition, report
from recops_operator.decisions.recmodel.retiring import (
    candidate_parked,
    retiring,
    scaled_down,
    serving_versions,
)
from recops_operator.decisions.recmodel.rollouts import follow_rollouts
from recops_operator.decisions.recmodel.training import (
    compiling,
    release_finished_run,
    start_training,
)
from recops_operator.decisions.recmodel.versions import learn_versions
from recops_operator.decisions.recmodel.weights import (
    endpoints,
    role_weights,
    roles,
    rollout_holds_weights,
    served,
    version_weights,
    weights_summary,
)
from recops_operator.render.serving import ServedVersion


@dataclass(frozen=True)
class RecModelPlan:
    status: RecModelStatus
    start_training: TrainingRunSpec | None
    served: list[ServedVersion]
    weights: dict[str, int]
    events: tuple[Event, ...]
    # Per target, the versions its stable and canary Services select.
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The stable/canary split of a user's GRPCRoute (trafficRouting.grpcRoute).
    role_weights: Weights | None = None
    # A Rollout in flight writes the route's weights: the RecModel keeps what the route has.
    rollout_holds_weights: bool = False


def plan(
    namespace: str,
    name: str,
    spec: RecModelSpec,
    status: RecModelStatus | None,
    obs: RecModelObservation,
) -> RecModelPlan:
    """The next status of RecModel ``name``, what to train and serve, and the events."""
    s = (status or RecModelStatus()).model_copy(deep=True)
    events: list[Event] = []
    condition(s, obs, RecModelCondition.SPEC_VALID, True, reasons.VALID)
    release_finished_run(s, obs, events)
    learn_versions(s, obs.runs, events)
    rollout = follow_rollouts(s, obs.rollouts, events)
    start_spec = start_training(name, spec, s, obs, events)

    s.retiring = retiring(spec, s, obs.rollouts, obs.now)
    versions = serving_versions(s, candidate_parked(spec, s, obs.rollouts, obs.now))
    events += scaled_down(obs, versions)
    on_targets = served(namespace, name, spec, s, versions)
    weights = version_weights(s, rollout, versions)
    s.weights = weights_summary(weights)
    s.endpoints = endpoints(on_targets, obs)

    phase = report(s, spec, on_targets, rollout, obs, compiling(s, obs))
    if status is None or status.phase != phase:
        events.append(Event("Normal", reasons.phase_changed(phase), f"phase {phase.value}"))
    s.observed_generation = obs.generation
    return RecModelPlan(
        s,
        start_spec,
        on_targets,
        weights,
        tuple(events),
        roles(s, on_targets),
        role_weights(s, weights),
        rollout_holds_weights(s, obs.rollouts),
    )
