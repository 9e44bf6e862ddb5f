"""What a real API server does to a custom object at the door, before it stores it.

For each create, update or patch of a kind in crds/ (and each write of its ``status``
subresource) the server, in this order: keeps only the part the endpoint may change (the
main endpoint never writes ``status``, the status endpoint writes nothing else); drops the
fields its structural schema does not know (refusing them with 400 under
``fieldValidation=Strict``, warning about them under ``Warn``, the default); drops nulls
the schema does not allow; applies defaults; checks types, required fields, enums and
bounds; then, on an object that passed, runs the CEL rules. A refusal is a 422 ``Status``
whose message and ``details.causes`` name each field as kubectl shows it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock

from recops_testkit.schemas import OUR_CRDS, defaulted, field_path, load_crd, rule_failures

Obj = dict[str, Any]
_ROOT_KEYS = ("apiVersion", "kind", "metadata")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class CustomKind:
    """One served version of a CRD: what the server needs to admit its objects."""

    group: str
    version: str
    plural: str
    kind: str
    schema: Obj
    status_subresource: bool
    categories: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    crd: Obj = field(default_factory=dict, repr=False, compare=False)


def load_kinds(folder: Path = OUR_CRDS) -> dict[tuple[str, str], CustomKind]:
    """The served versions of the CRDs in ``folder``, by (group, plural)."""
    kinds: dict[tuple[str, str], CustomKind] = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = load_crd(path)
        spec, names = crd["spec"], crd["spec"]["names"]
        for version in spec["versions"]:
            if version.get("served", True):
                kinds[(spec["group"], names["plural"])] = CustomKind(
                    group=spec["group"],
                    version=version["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    schema=version["schema"]["openAPIV3Schema"],
                    status_subresource="status" in (version.get("subresources") or {}),
                    categories=tuple(names.get("categories") or ()),
                    short_names=tuple(names.get("shortNames") or ()),
                    crd=crd,
                )
    return kinds


@dataclass(frozen=True)
class Cause:
    """One entry of a Status's ``details.causes``."""

    reason: str
    field: str
    message: str

    def wire(self) -> Obj:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def admit(
    kind: CustomKind,
    new: Obj,
    old: Obj | None,
    *,
    subresource: str | None,
    field_validation: str | None,
) -> tuple[Obj, list[str]]:
    """The object the server would store and the warnings it would send back; raises a
    ``kmock.KubernetesError`` (400 or 422) for what it would refuse."""
    obj = copy.deepcopy(new)
    if kind.status_subresource:
        if subresource == "status":
            obj = {**copy.deepcopy(old or {}), "status": obj.get("status")}
            obj["metadata"] = new.get("metadata") or (old or {}).get("metadata") or {}
        elif old is not None and "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)
    unknown: list[str] = []
    obj = _pruned(obj, kind.schema, [], unknown, root=True)
    if unknown and (field_validation or "").lower() == "strict":
        fields = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise kmock.KubernetesError(
            status=400,
            reason="BadRequest",
            message=f'{kind.kind} in version "{kind.version}" cannot be handled as a '
            f"{kind.kind}: strict decoding error: {fields}",
            details={},
        )
    obj = defaulted(obj, kind.schema)
    causes = _check(kind.schema, obj, [])
    if not causes:  # the server runs the rules only on an object that passed its schema
        causes = [
            Cause("FieldValueInvalid", where, f"Invalid value: {_type_name(schema)}: {message}")
            for where, schema, message in rule_failures(kind.schema, obj)
        ]
    if subresource == "status":
        causes = [c for c in causes if c.field.startswith("status")]
    if causes:
        raise invalid(kind, str((new.get("metadata") or {}).get("name", "")), causes)
    ignore = (field_validation or "").lower() == "ignore"
    return obj, [] if ignore else [f'unknown field "{u}"' for u in unknown]


def invalid(kind: CustomKind, name: str, causes: Sequence[Cause]) -> kmock.KubernetesError:
    """The 422 a real server answers, worded as its field errors are."""
    lines = [f"{c.field}: {c.message}" for c in causes]
    summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    return kmock.KubernetesError(
        status=422,
        reason="Invalid",
        message=f'{kind.kind}.{kind.group} "{name}" is invalid: {summary}',
        details={
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [c.wire() for c in causes],
        },
    )


def merge_diff(old: Obj, new: Obj) -> Obj:
    """A JSON merge patch turning ``old`` into ``new`` (a removed key becomes null)."""
    out: Obj = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            if sub := merge_diff(before, value):
                out[key] = sub
        elif key not in old or value != before:
            out[key] = value
    return out


# --- Pruning ------------------------------------------------------------------------------


def _pruned(
    value: Any, schema: Obj, path: list[Any], unknown: list[str], root: bool = False
) -> Any:
    # A value of the wrong type is left whole, for the type check to name it.
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return value
        properties: Obj = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        keep_root = root or bool(schema.get("x-kubernetes-embedded-resource"))
        out: Obj = {}
        for key, item in value.items():
            if keep_root and key in _ROOT_KEYS:
                out[key] = item
            elif key in properties:
                sub = properties[key]
                if item is None and not sub.get("nullable"):
                    continue  # a null the schema does not allow is dropped, then defaulted
                out[key] = _pruned(item, sub, [*path, key], unknown)
            elif isinstance(extra, dict):
                out[key] = _pruned(item, extra, [*path, key], unknown)
            elif extra is True:
                out[key] = item
            else:
                unknown.append(field_path([*path, key]))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_pruned(v, schema["items"], [*path, i], unknown) for i, v in enumerate(value)]
    return value


# --- The structural schema's value checks -------------------------------------------------


def _check(schema: Obj, value: Any, path: list[Any]) -> list[Cause]:
    where = field_path(path)
    if value is None:
        return []
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        expected = (
            None if isinstance(value, (int, str)) and not isinstance(value, bool) else "string"
        )
    if expected and not _is_type(value, expected):
        # The server shows the JSON type it found, not the value, on both sides.
        found = json.dumps(_json_type(value))
        message = f"Invalid value: {found}: {where} in body must be of type {expected}: {found}"
        return [Cause("FieldValueTypeInvalid", where, message)]
    causes: list[Cause] = []
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_show(v) for v in schema["enum"])
        message = f"Unsupported value: {_show(value)}: supported values: {supported}"
        causes.append(Cause("FieldValueNotSupported", where, message))
    causes += [
        Cause("FieldValueInvalid", where, f"Invalid value: {_show(value)}: {where} in body {m}")
        for m in _bounds(schema, value)
    ]
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                causes.append(
                    Cause("FieldValueRequired", field_path([*path, key]), "Required value")
                )
        properties: Obj = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if isinstance(sub, dict) and not (not path and key in _ROOT_KEYS):
                causes += _check(sub, item, [*path, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            causes += _check(schema["items"], item, [*path, i])
    return causes


def _bounds(schema: Obj, value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            low, strict = schema["minimum"], schema.get("exclusiveMinimum") is True
            if value < low or (strict and value == low):
                out.append(f"should be greater than {'' if strict else 'or equal to '}{_num(low)}")
        if "maximum" in schema:
            high, strict = schema["maximum"], schema.get("exclusiveMaximum") is True
            if value > high or (strict and value == high):
                out.append(f"should be less than {'' if strict else 'or equal to '}{_num(high)}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"should be at most {schema['maxLength']} chars long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"should match '{schema['pattern']}'")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"should have at most {schema['maxItems']} items")
    return out


def _is_type(value: Any, expected: str) -> bool:
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _json_type(value) == expected


def _json_type(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "integer" if isinstance(value, int) else "number"
    return _JSON_TYPES.get(type(value), "object")


def _type_name(schema: Obj) -> str:
    """CEL failures show the node's type, not its value (``Invalid value: "array"``)."""
    return json.dumps(schema.get("type", "object"))


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(value: Any) -> str:
    """A value as Go's field errors print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    return json.dumps(value, separators=(",", ":"))
