"""What the RecModel controller saw before planning: the RecModel's runs, rollouts,
serving Deployments and, when retraining asks for them, live signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from recops_operator.api.rollout import Rollout
from recops_operator.api.trainingrun import TrainingRun
from recops_operator.retraining.decision import LiveSignals


@dataclass(frozen=True)
class DeploymentObservation:
    desired: int
    ready: int
    version: str | None = None  # the recops.io/version label


@dataclass(frozen=True)
class RecModelObservation:
    now: datetime
    generation: int | None
    created: datetime
    runs: list[TrainingRun]
    rollouts: list[Rollout]
    deployments: dict[str, DeploymentObservation] = field(default_factory=dict)
    signals: LiveSignals | None = None  # live traffic, when retraining needs to know
