"""Turn pydantic validation errors into messages that name the field, as users wrote it."""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("targets", 0, "replicas")`` -> ``targets[0].replicas`` (with an optional prefix)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def describe_validation_error(exc: ValidationError, prefix: str = "spec") -> list[str]:
    """One line per problem: ``spec.targets[0].replicas: Input should be ...``."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling against `kubectl explain`"
        lines.append(f"{field_path(tuple(err['loc']), prefix)}: {msg}")
    return lines
