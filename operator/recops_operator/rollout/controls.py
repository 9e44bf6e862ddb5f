"""Manual controls from a Rollout's spec and its GitOps annotations."""

from __future__ import annotations

from collections.abc import Mapping

from recops_operator.api.rollout import (
    ANNOTATION_ABORT,
    ANNOTATION_PROMOTE,
    ANNOTATION_RETRY,
    RolloutSpec,
)
from recops_operator.rollout.actions import Controls

_TRUE = {"true", "yes", "1", "on"}


def controls_of(spec: RolloutSpec, annotations: Mapping[str, str] | None) -> Controls:
    """Spec fields OR annotations; retry is the larger of ``spec.retry`` and the annotation.

    A retry annotation that is not a whole number is ignored (it cannot mean a retry count);
    the spec field is validated by the schema.
    """
    notes = annotations or {}
    retry = spec.retry
    raw_retry = notes.get(ANNOTATION_RETRY, "").strip()
    if raw_retry.isdigit():
        retry = max(retry, int(raw_retry))
    return Controls(
        promote=spec.promote or notes.get(ANNOTATION_PROMOTE, "").strip().lower() in _TRUE,
        abort=spec.abort or notes.get(ANNOTATION_ABORT, "").strip().lower() in _TRUE,
        retry=retry,
    )
