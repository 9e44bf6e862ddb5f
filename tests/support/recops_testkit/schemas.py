"""Kubernetes objects checked as a real API server checks them, the one contract of every test.

``validate_object(obj)`` raises :class:`ObjectRefusedError`, naming the object and each field,
when the API server would refuse ``obj`` or silently drop part of it; ``object_errors(obj)``
lists the same problems, for the tests that assert that a bad object IS refused.

- Custom kinds (ours in crds/, the chart's crds/, the upstream CRDs of KubeRay, Gateway API
  and the Prometheus operator) go through what the API server does with a custom object: the
  schema's defaults are applied; the OpenAPI v3 schema, made :func:`strict`, reports every
  field the server would refuse under strict field validation and otherwise prune silently;
  then, on an object that passed, the ``x-kubernetes-list-type`` uniqueness and the CEL rules
  (``x-kubernetes-validations``) with the Kubernetes list functions our rules use.
- Core kinds (Deployment, Service, Job, RBAC, CustomResourceDefinition, ...) go through
  kubernetes-validate's strict schemas of the Kubernetes version the project supports.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from recops_testkit.prerequisites import crd_schemas_dir

Obj = dict[str, Any]
KUBERNETES_VERSION = "1.32.0"
REPO_ROOT = Path(__file__).resolve().parents[3]
OUR_CRDS = REPO_ROOT / "crds"
# The chart ships ours again (kept equal by a test) and kopf's peering CRDs.
CHART_CRDS = REPO_ROOT / "charts" / "recops" / "crds"
UNKNOWN_FIELD = "unknown field (refused under strict field validation, else silently pruned)"


class ObjectRefusedError(AssertionError):
    """What the API server would refuse in an object, or drop from it without a word."""

    def __init__(self, obj: Obj, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(f"{describe(obj)}: " + "; ".join(self.errors))


def describe(obj: Obj) -> str:
    """``Kind namespace/name``, as error messages name an object."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or "(unnamed)"
    kind = obj.get("kind", "(no kind)")
    return f"{kind} {meta['namespace']}/{name}" if meta.get("namespace") else f"{kind} {name}"


def validate_object(obj: Obj) -> None:
    """Raise :class:`ObjectRefusedError` when a real API server would refuse ``obj`` or silently
    prune any of its fields; the message names the object and every offending field."""
    __tracebackhide__ = True
    if errors := object_errors(obj):
        raise ObjectRefusedError(obj, errors)


def object_errors(obj: Obj) -> list[str]:
    """Every problem ``validate_object`` raises for, one ``field.path: message`` each; empty
    when the API server would store ``obj`` as it is."""
    upstream = crd_schemas_dir()
    crds = crd_registry((OUR_CRDS, CHART_CRDS, upstream))
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if key in crds.schemas:
        return crds.errors(obj)
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        if not upstream.is_dir():
            pytest.skip(f"upstream CRD schemas not found at {upstream} (set RECOPS_CRD_SCHEMAS)")
        return [
            f"(root): no schema for {key[0]} {key[1]}: not a core kind of Kubernetes "
            f"{KUBERNETES_VERSION}, nor a served version of a CRD in crds/, the chart or "
            "the upstream CRD schemas"
        ]
    except kubernetes_validate.ValidationError as err:
        return _messages(err)
    return []


# --- The strict schema --------------------------------------------------------------------

_ROOT_FIELDS: Obj = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    # The API server checks ObjectMeta itself, whatever the CRD's schema says of it.
    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}


def strict(schema: Obj) -> Obj:
    """A CRD's (structural) ``openAPIV3Schema`` that refuses every field the API server would
    prune: each object node without ``additionalProperties`` or
    ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``, as
    `kubectl apply --validate=strict` refuses what would otherwise be dropped without a word
    (a typo never taking effect). An object without ``properties`` keeps nothing, as on a
    server. The resource root and embedded resources keep apiVersion, kind and metadata.
    Value validations (allOf, anyOf, oneOf, not) are left as they are: the server prunes by
    the schema's skeleton only."""
    return _strict(schema, resource=True)


def _strict(schema: Obj, *, resource: bool = False) -> Obj:
    out = dict(schema)
    properties = {k: _strict(v) for k, v in schema.get("properties", {}).items()}
    if resource or schema.get("x-kubernetes-embedded-resource"):
        properties = {**properties, **_ROOT_FIELDS}
    if properties:
        out["properties"] = properties
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = _strict(schema["items"])
    if (
        (out.get("type") == "object" or "properties" in out)
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


# --- Custom resources ---------------------------------------------------------------------


def load_crd(path: Path) -> Obj:
    """One CRD file (the upstream ones are large: libyaml's loader when there is one)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd: Obj = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return crd


class CrdSchemas:
    """The schema of each served version of the CRDs in ``folders``, by (apiVersion, kind);
    the first folder defining one wins."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.schemas: dict[tuple[str, str], Obj] = {}
        self._validators: dict[tuple[str, str], Any] = {}
        for folder in folders:
            for path in sorted(folder.glob("*.yaml")):
                crd = load_crd(path)
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if version.get("served", True):
                        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                        self.schemas.setdefault(key, version["schema"]["openAPIV3Schema"])

    def errors(self, obj: Obj) -> list[str]:
        """The API server's verdict on ``obj``, a custom object of a kind in ``schemas``."""
        key = (obj["apiVersion"], obj["kind"])
        schema = self.schemas[key]
        if key not in self._validators:
            from openapi_schema_validator import OAS30Validator

            self._validators[key] = OAS30Validator(strict(schema))
        filled = defaulted(obj, schema)
        found = sorted(
            self._validators[key].iter_errors(filled),
            key=lambda e: [str(p) for p in e.absolute_path],
        )
        errors = [m for e in found for m in _messages(e)]
        if not errors:  # the server runs these only on an object that passed its schema
            errors = _list_errors(schema, filled, []) + _cel_errors(schema, filled, [])
        return errors


@cache
def crd_registry(folders: tuple[Path, ...]) -> CrdSchemas:
    return CrdSchemas(folders)


def defaulted(value: Any, schema: Obj) -> Any:
    """``value`` with the schema's defaults applied where a field is missing (or null and not
    nullable), as the API server applies them before it validates."""
    if isinstance(value, dict):
        properties: Obj = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {
            k: defaulted(v, properties[k])
            if k in properties
            else defaulted(v, extra)
            if isinstance(extra, dict)
            else v
            for k, v in value.items()
        }
        for key, sub in properties.items():
            missing = out.get(key) is None and not (key in out and sub.get("nullable"))
            if "default" in sub and missing:
                out[key] = defaulted(copy.deepcopy(sub["default"]), sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [defaulted(v, schema["items"]) for v in value]
    return value


def _list_errors(schema: Obj, value: Any, path: list[Any]) -> list[str]:
    """Duplicates in ``x-kubernetes-list-type: set`` and ``map`` lists, which the server
    refuses."""
    errors: list[str] = []
    if isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for i, item in enumerate(value):
            if list_type == "set" or (list_type == "map" and isinstance(item, dict)):
                ident = [item.get(k) for k in keys] if list_type == "map" else item
                if ident in seen:
                    errors.append(
                        f"{field_path([*path, i])}: duplicate entry {ident!r} ({list_type})"
                    )
                seen.append(ident)
            errors += _list_errors(schema.get("items", {}), item, [*path, i])
    elif isinstance(value, dict):
        for key, item in value.items():
            errors += _list_errors(_sub_schema(schema, key), item, [*path, key])
    return errors


def _sub_schema(schema: Obj, key: str) -> Obj:
    sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
    return sub if isinstance(sub, dict) else {}


# --- CEL rules ----------------------------------------------------------------------------

# Field names the API server escapes to make them CEL identifiers (`p.__namespace__`).
_CEL_RESERVED = frozenset(
    (
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    )
)
_OLD_SELF = re.compile(r"\boldSelf\b")


def _cel_name(name: str) -> str:
    if name in _CEL_RESERVED:
        return f"__{name}__"
    for char, escaped in (("__", "__underscores__"), (".", "__dot__"), ("-", "__dash__")):
        name = name.replace(char, escaped)
    return name.replace("/", "__slash__")


def _to_cel(value: Any, schema: Obj) -> Any:
    """``value`` as the server hands it to CEL: typed by the schema, objects' field names
    escaped, maps' keys as they are."""
    from celpy import celtypes
    from celpy.adapter import json_to_cel

    if isinstance(value, dict):
        properties: Obj = schema.get("properties", {})
        if properties:
            return celtypes.MapType(
                {
                    celtypes.StringType(_cel_name(k)): _to_cel(v, properties.get(k, {}))
                    for k, v in value.items()
                }
            )
        return celtypes.MapType(
            {celtypes.StringType(k): _to_cel(v, _sub_schema(schema, k)) for k, v in value.items()}
        )
    if isinstance(value, list):
        items = schema.get("items")
        return celtypes.ListType([_to_cel(v, items or {}) for v in value])
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return celtypes.DoubleType(value)
    return json_to_cel(value)


def _is_sorted(items: Any) -> Any:
    from celpy import celtypes

    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(list(items))))


@cache
def _cel_program(rule: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule), functions={"isSorted": _is_sorted})


def _cel_errors(schema: Obj, value: Any, path: list[Any]) -> list[str]:
    return [
        f"{where or '(root)'}: {message}"
        for where, _, message in rule_failures(schema, value, path)
    ]


def rule_failures(schema: Obj, value: Any, path: Sequence[Any] = ()) -> list[tuple[str, Obj, str]]:
    """Each ``x-kubernetes-validations`` rule ``value`` breaks, as (field path, the schema
    node the rule sits on, message); transition rules (``oldSelf``) are skipped."""
    from celpy.celparser import CELParseError
    from celpy.evaluation import CELEvalError

    failures: list[tuple[str, Obj, str]] = []
    if value is None:
        return failures
    for rule in schema.get("x-kubernetes-validations", []):
        if _OLD_SELF.search(rule["rule"]):
            continue  # a transition rule: it only runs when an object is updated
        where = (field_path(path) + rule.get("fieldPath", "")).lstrip(".")
        try:
            passed = bool(_cel_program(rule["rule"]).evaluate({"self": _to_cel(value, schema)}))
        except (CELEvalError, CELParseError) as err:
            failures.append((where, schema, f"CEL rule {rule['rule']!r} failed to evaluate: {err}"))
            continue
        if not passed:
            failures.append((where, schema, rule.get("message", rule["rule"])))
    if isinstance(value, dict):
        for key, item in value.items():
            failures += rule_failures(_sub_schema(schema, key), item, [*path, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            failures += rule_failures(schema.get("items", {}), item, [*path, i])
    return failures


# --- Messages -----------------------------------------------------------------------------


def field_path(parts: Iterable[Any]) -> str:
    """``spec.targets[0].name``, as the API server names a field."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _messages(error: Any) -> list[str]:
    """One ``field.path: message`` per problem; an unknown field is named itself, not its
    parent."""
    path = list(error.absolute_path)
    if (
        error.validator == "additionalProperties"
        and error.validator_value is False
        and isinstance(error.instance, dict)
        and isinstance(error.schema, dict)
    ):
        known = error.schema.get("properties", {})
        return [
            f"{field_path([*path, k])}: {UNKNOWN_FIELD}" for k in error.instance if k not in known
        ]
    return [f"{field_path(path) or '(root)'}: {error.message}"]
