"""Spec validation with messages that name the field and say what to change."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from recops_contracts.wire import describe_errors, dotted

M = TypeVar("M", bound=BaseModel)


class InvalidSpecError(ValueError):
    """A spec that can never work as written; the message names the field."""


def describe(exc: ValidationError, within: tuple[int | str, ...] = ()) -> str:
    """``spec.targets[0].resources.gpu: ...; spec.model.dropout: ...``; ``within``: the
    path of the validated part inside the spec."""
    spec_path = dotted("spec")
    return describe_errors(
        exc,
        lambda loc: spec_path((*within, *loc)),
        unknown_field="unknown field; check the spelling against `kubectl explain`",
    )


def parse_spec(model: type[M], spec: Any) -> M:
    """The typed spec, or InvalidSpecError naming every offending field."""
    try:
        return model.model_validate(spec if spec is not None else {})
    except ValidationError as exc:
        raise InvalidSpecError(describe(exc)) from None


def overlay(base: M, override: M | None, where: str) -> M:
    """``base`` with the fields ``override`` sets on top (one level deep), checked again.

    A TrainingRun that overrides ``model: {epochs: 5}`` keeps the RecModel's width, depth
    and the rest; replacing the whole block would quietly reset them to defaults. The
    merged block is validated as a whole, so a combination that cannot work (numHeads
    not dividing the RecModel's width) names the field as ``spec.<where>.<field>``.
    """
    if override is None:
        return base
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.update(
        override.model_dump(
            mode="json", by_alias=True, exclude_none=True, include=override.model_fields_set
        )
    )
    try:
        return type(base).model_validate(data)
    except ValidationError as exc:
        problems = describe(exc, (where,))
        raise InvalidSpecError(f"{problems} (with the RecModel's other {where} fields)") from None


# Service names (and so RayJob names, whose KubeRay Services take them) must be DNS-1035
# labels: a lower-case letter first. The rendered names start with the object's name.
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_dns_1035(kind: str, name: str) -> None:
    """Raise InvalidSpecError when ``name`` cannot start the Services rendered for it."""
    if not _DNS_1035.match(name):
        raise InvalidSpecError(
            f"metadata.name: {kind} {name!r} is not a DNS-1035 label (a lower-case letter "
            "first, then letters, digits or '-'); the Services and RayJobs rendered for it "
            "take its name; recreate it under such a name"
        )
