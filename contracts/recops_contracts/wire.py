"""The base of every model that crosses a process boundary, and its error messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

# A Kubernetes object name (RFC 1123 label, as used for most object names).
DnsName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
]
# A Kubernetes resource quantity such as "500m", "2", "4Gi".
Quantity = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"),
]

Location = tuple[int | str, ...]


class WireModel(BaseModel):
    """Fields are snake_case in Python and camelCase on the wire (custom resources, config
    files); an unknown field is an error, since a typo must not be silently dropped."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it is stored and sent (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def dotted(root: str = "") -> Callable[[Location], str]:
    """``root.a.b[0].c``: how a field's location reads in a message."""

    def path(loc: Location) -> str:
        out = root
        for part in loc:
            out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
        return out or "(root)"

    return path


def describe_errors(
    exc: ValidationError,
    path: Callable[[Location], str] | None = None,
    *,
    unknown_field: str = "unknown field; check its spelling",
) -> str:
    """Every problem as ``<field>: <what to change>``, joined by "; ".

    ``path`` turns a location into the name the reader knows (``spec.model.dropout``, an
    environment variable); ``unknown_field`` is the advice for a field that does not exist.
    """
    name = path or dotted()
    parts = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown_field
        parts.append(f"{name(tuple(err['loc']))}: {msg}")
    return "; ".join(parts)
