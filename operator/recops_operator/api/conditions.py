"""Kubernetes-style status conditions and the helpers that keep them honest.

A condition's ``lastTransitionTime`` changes only when its ``status`` flips: a reason
or message update alone is not a transition (the Argo Rollouts and KServe rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from recops_operator.api.base import ApiModel

READY = "Ready"

# Reasons are CamelCase, as Kubernetes requires.
Reason = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    ),
]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observed aspect of a resource, in the shape of metav1.Condition."""

    type: str = Field(description="Condition type, for example Ready or Trained.", min_length=1)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Reason = Field(description="CamelCase reason for the condition's last transition.")
    message: str = Field(default="", description="Human-readable details.", max_length=32768)
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition was set from."
    )
    last_transition_time: datetime = Field(description="When the status last changed (RFC 3339).")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def set_condition(
    conditions: Sequence[Condition],
    type: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``type`` set; the transition time moves only on a flip."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    now = now or utcnow()
    result: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type != type:
            result.append(cond)
            continue
        found = True
        transition = cond.last_transition_time if cond.status == status else now
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=observed_generation,
                last_transition_time=transition,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=observed_generation,
                last_transition_time=now,
            )
        )
    return result


def get_condition(conditions: Iterable[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


def aggregate_ready(
    conditions: Sequence[Condition],
    required: Sequence[str],
    negative: Sequence[str] = (),
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Roll per-part conditions up into one ``Ready`` (the KServe pattern).

    ``Ready`` is True when every ``required`` condition is True and no ``negative``
    condition (such as ``Degraded``) is True; otherwise it is False (or Unknown while a
    required part has not reported yet) and carries the first offending part's reason.
    """
    for neg in negative:
        cond = get_condition(conditions, neg)
        if cond is not None and cond.status == ConditionStatus.TRUE:
            return set_condition(
                conditions,
                READY,
                ConditionStatus.FALSE,
                cond.reason,
                f"{neg}: {cond.message}",
                observed_generation,
                now,
            )
    for req in required:
        cond = get_condition(conditions, req)
        if cond is None:
            return set_condition(
                conditions,
                READY,
                ConditionStatus.UNKNOWN,
                f"{req}Pending",
                f"{req} has not been reported yet",
                observed_generation,
                now,
            )
        if cond.status != ConditionStatus.TRUE:
            status = (
                ConditionStatus.UNKNOWN
                if cond.status == ConditionStatus.UNKNOWN
                else ConditionStatus.FALSE
            )
            return set_condition(
                conditions,
                READY,
                status,
                cond.reason,
                f"{req}: {cond.message}",
                observed_generation,
                now,
            )
    return set_condition(
        conditions,
        READY,
        ConditionStatus.TRUE,
        "AllComponentsReady",
        "all components are ready",
        observed_generation,
        now,
    )
