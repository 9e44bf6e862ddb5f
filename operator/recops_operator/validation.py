"""Spec validation with messages that name the field and say what to change."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class InvalidSpecError(ValueError):
    """A spec that can never work as written; the message names the field."""


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def describe(exc: ValidationError) -> str:
    """``spec.targets[0].resources.gpu: ...; spec.model.dropout: ...``"""
    parts = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{_path(tuple(err['loc']))}: {msg}")
    return "; ".join(parts)


def parse_spec(model: type[M], spec: Any) -> M:
    """The typed spec, or InvalidSpecError naming every offending field."""
    try:
        return model.model_validate(spec if spec is not None else {})
    except ValidationError as exc:
        raise InvalidSpecError(describe(exc)) from None
