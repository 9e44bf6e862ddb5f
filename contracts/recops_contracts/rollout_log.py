"""The JSON decision log of `recops rollout --log`: every decision of a canary on one
machine, the weights it set and what it measured, then the verdict.

The operator's one-machine driver writes it (rewritten after each record, so it can be
read mid-run); the quickstart reads the verdict and plots the records. camelCase, like the
Rollout's status it mirrors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from recops_contracts.wire import WireModel


class RolloutWeights(WireModel):
    """Traffic split in percent."""

    stable: int
    candidate: int


class RolloutMetric(BaseModel):
    """One measurement, as the Rollout's status shows it (``MetricResult`` in camelCase,
    unset fields absent), with what a reader needs to compare the two versions.

    ``value`` is what the threshold judges: the candidate's own value, or, for a comparison
    with the stable version (``hit-rate-vs-stable``), the candidate's minus the stable's.
    The fields after it are optional, so logs written before they existed still parse.
    """

    # The operator's MetricResult owns the other fields; the log keeps them as written.
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    name: str
    phase: str  # Successful, Failed, Inconclusive or Error
    value: float | None = None
    # The stable version's value of what is measured (its hit rate, error rate, latency).
    stable_value: float | None = None
    # The candidate's own value, where ``value`` is a difference from the stable's.
    candidate_value: float | None = None
    threshold: float | None = None
    condition: str | None = None  # how ``value`` must compare with the threshold: "<= 0.01"
    # Of the values and the threshold: seconds (latency) or a fraction (rates and their
    # differences); absent for a PromQL metric, whose unit only its author knows.
    unit: Literal["seconds", "fraction"] | None = None

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written as read: a field the measurement did not have stays absent.
        return {k: v for k, v in handler(self).items() if v is not None}


class RolloutRecord(WireModel):
    """One decision: when, at which step, what it did and why, and what it measured."""

    time: str
    elapsed_s: float
    step_index: int | None
    phase: str | None
    action: str
    reason: str
    message: str
    weights: RolloutWeights
    metrics: list[RolloutMetric]


class RolloutVerdict(WireModel):
    """How the rollout ended: ``Promoted`` or ``Aborted``, why, and the final split."""

    phase: str | None
    reason: str | None
    message: str | None
    weights: str | None  # as text: "stable=0 candidate=100"
    step_index: int | None


class RolloutLog(WireModel):
    """The whole log; ``verdict`` is absent until the rollout has ended."""

    stable: str
    candidate: str
    policy: dict[str, Any]  # the rollout policy as given, in its wire form
    provider: str  # where measurements came from: "prometheus URL" or "scrape URL, ..."
    records: list[RolloutRecord] = []
    verdict: RolloutVerdict | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The object as written: camelCase, ``verdict`` only once there is one."""
        return self.model_dump(by_alias=True, exclude=set() if self.verdict else {"verdict"})
