"""The engine's inputs and outputs besides the API types: controls, actions, outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from recops_operator.api import reasons
from recops_operator.api.rollout import MetricResult, RolloutStatus, Weights
from recops_operator.api.rollout_policy import AnalysisMetric

ActionKind = Literal["setWeights", "wait", "promote", "abort", "pause", "retry"]


@dataclass(frozen=True)
class Controls:
    """The manual controls, merged from the spec and the GitOps annotations."""

    promote: bool = False
    abort: bool = False
    retry: int = 0
    # Drivers that abort on their own (a deadline, an interrupt) say why.
    abort_reason: str = reasons.ABORTED_BY_USER
    abort_message: str = "abort requested; all traffic to stable"


@dataclass(frozen=True)
class Action:
    """What the driver must do now; ``weights`` is always the split to hold afterwards."""

    kind: ActionKind
    weights: Weights
    reason: str
    message: str = ""
    # Seconds until the engine wants to decide again; 0: at once; None: only on a change.
    requeue_after: float | None = None


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: RolloutStatus
    # True when the decision is worth a history entry and an event (not a plain wait).
    recorded: bool
    measurements: Sequence[MetricResult] = field(default_factory=tuple)


@dataclass(frozen=True)
class MeasurementPlan:
    """Metrics to observe now and the window (seconds) their counters should cover."""

    metrics: Sequence[AnalysisMetric]
    window_seconds: float
