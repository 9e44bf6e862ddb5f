"""Rollout: moves a RecModel's traffic from its stable version to a candidate."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from recops_contracts.wire import DnsName
from recops_operator.api.base import ApiModel, ModelVersionStr, ObjectMeta
from recops_operator.api.conditions import Condition
from recops_operator.api.rollout_policy import RolloutPolicy

KIND = "Rollout"
PLURAL = "rollouts"

# GitOps users act on a rollout through these annotations as well as through the spec.
ANNOTATION_PROMOTE = "recops.io/promote"
ANNOTATION_ABORT = "recops.io/abort"
ANNOTATION_RETRY = "recops.io/retry"


class RolloutSpec(ApiModel):
    """Which candidate to roll out, under which policy, and the manual controls."""

    rec_model: DnsName = Field(description="The RecModel whose traffic moves.")
    candidate_version: ModelVersionStr = Field(description="The version to roll out.")
    stable_version: ModelVersionStr | None = Field(
        default=None,
        description="The version to move traffic from; the RecModel's stable one when empty.",
    )
    policy: RolloutPolicy | None = Field(
        default=None, description="Canary policy; the RecModel's rolloutPolicy when empty."
    )
    promote: bool = Field(
        default=False, description="Skip the remaining steps and promote the candidate now."
    )
    abort: bool = Field(
        default=False, description="Return all traffic to stable and stop the rollout."
    )
    retry: int = Field(
        default=0,
        ge=0,
        description="Increase to restart an aborted rollout from its first step.",
    )


class RolloutPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    FAILED = "Failed"


class RolloutCondition(StrEnum):
    SPEC_VALID = "SpecValid"
    PROGRESSING = "Progressing"
    ANALYSIS_PASSING = "AnalysisPassing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    READY = "Ready"


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class Weights(ApiModel):
    """Traffic split in percent."""

    stable: int = Field(ge=0, le=100, description="Percent for the stable version.")
    candidate: int = Field(ge=0, le=100, description="Percent for the candidate.")


class MetricResult(ApiModel):
    """The latest measurement of one analysis metric."""

    name: str = Field(description="Metric name.")
    phase: MeasurementPhase = Field(description="Outcome of the latest measurement.")
    value: float | None = Field(default=None, description="Measured value.")
    stable_value: float | None = Field(default=None, description="The stable version's value.")
    threshold: float = Field(description="Threshold it is compared with.")
    condition: str = Field(description="Success condition, e.g. '<= 0.01'.")
    sample_size: int = Field(default=0, ge=0, description="Samples behind the value.")
    successes: int = Field(
        default=0, ge=0, description="Successful measurements in the current analysis step."
    )
    failures: int = Field(default=0, ge=0, description="Failed measurements so far.")
    inconclusives: int = Field(default=0, ge=0, description="Inconclusive measurements so far.")
    dry_run: bool = Field(default=False, description="Recorded only, not gating.")
    message: str = Field(default="", description="Why, for Inconclusive and Error.")
    measured_at: str | None = Field(default=None, description="When (RFC 3339).")


class Decision(ApiModel):
    """One decision of the rollout, kept in a bounded history."""

    time: str = Field(description="When (RFC 3339).")
    step_index: int = Field(ge=0, description="Step the decision was taken at.")
    action: Literal["setWeights", "wait", "promote", "abort", "pause", "retry"] = Field(
        description="What was decided."
    )
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(default="", description="Details.")


class RolloutStatus(ApiModel):
    """What the rollout controller observed and did."""

    phase: RolloutPhase | None = Field(default=None, description="Short summary.")
    current_step_index: int | None = Field(default=None, ge=0, description="Step being run.")
    weights: Weights | None = Field(default=None, description="Current traffic split.")
    weights_text: str | None = Field(
        default=None,
        description="Traffic split as text for kubectl get, e.g. 'stable=90 candidate=10'.",
    )
    stable_version: ModelVersionStr | None = Field(default=None, description="Stable version.")
    candidate_version: ModelVersionStr | None = Field(
        default=None, description="Candidate version."
    )
    step_started_at: str | None = Field(default=None, description="When the current step began.")
    metrics: list[MetricResult] | None = Field(default=None, description="Latest measurements.")
    history: list[Decision] | None = Field(
        default=None, max_length=50, description="The last decisions, newest last."
    )
    observed_retry: int | None = Field(default=None, ge=0, description="spec.retry acted on.")
    reason: str | None = Field(default=None, description="Reason of the last decision.")
    message: str | None = Field(default=None, description="Message of the last decision.")
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    conditions: list[Condition] | None = Field(default=None, description="Conditions.")


class Rollout(ApiModel):
    """A Rollout object as stored in the API."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["recops.io/v1alpha1"] = Field(default="recops.io/v1alpha1")
    kind: Literal["Rollout"] = Field(default="Rollout")
    metadata: ObjectMeta
    spec: RolloutSpec
    status: RolloutStatus | None = None
