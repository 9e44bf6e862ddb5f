"""Fixtures shared by every tier."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The harness shared by the tiers and the benchmarks: the prerequisites list, the emulated
# API server, the background operator, free ports.
sys.path.insert(0, str(Path(__file__).parent / "support"))
from prerequisites import crd_schemas_dir, in_ci, report, shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI a missing prerequisite fails the run before any test, naming it."""
    if in_ci() and (text := report()):
        pytest.exit(f"CI: {text}", returncode=4)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """In CI a skipped test is a failure: CI must not pass by running less."""
    outcome = yield
    report_ = outcome.get_result()
    if in_ci() and report_.skipped and not hasattr(report_, "wasxfail"):
        reason = report_.longrepr[2] if isinstance(report_.longrepr, tuple) else report_.longrepr
        report_.outcome = "failed"
        report_.longrepr = f"skipped in CI, which must run every test: {reason}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set RECOPS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_crd_schemas() -> Path:
    path = crd_schemas_dir()
    if not path.is_dir():
        pytest.skip(f"upstream CRD schemas not found at {path} (set RECOPS_CRD_SCHEMAS)")
    return path


# --- Validation of objects against CustomResourceDefinitions ------------------------------
#
# The API server validates a custom object with the CRD's OpenAPI v3 schema, its CEL rules
# (x-kubernetes-validations), and, under `kubectl --validate=strict`, refuses unknown
# fields. This does the same offline: a real OpenAPI 3.0 validator plus a real CEL
# evaluator, with the Kubernetes list functions our rules use.


def _strict(schema: Any) -> Any:
    """Refuse unknown fields, as strict field validation does (the API server would prune)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def _cel_errors(schema: Any, value: Any, path: list[Any]) -> list[str]:
    import celpy
    from celpy import celtypes

    def is_sorted(items: Any) -> Any:
        vals = list(items)
        return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(vals)))

    errors: list[str] = []
    if not isinstance(schema, dict) or value is None:
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        env = celpy.Environment()
        program = env.program(env.compile(rule["rule"]), functions={"isSorted": is_sorted})
        if not bool(program.evaluate(celpy.json_to_cel({"self": value}))):
            errors.append(f"{_path(path)}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _cel_errors(sub, value[key], [*path, key])
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _cel_errors(schema["items"], item, [*path, i])
    return errors


def crd_schema(crd: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    chosen = next(v for v in versions if version in (None, v["name"]))
    schema: dict[str, Any] = chosen["schema"]["openAPIV3Schema"]
    return schema


def validate_custom_object(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Every problem the API server (with strict field validation) would report."""
    from openapi_schema_validator import OAS30Validator

    schema = crd_schema(crd, obj.get("apiVersion", "/").split("/")[-1])
    strict = _strict({k: v for k, v in schema.items()})
    strict.setdefault("properties", {})["metadata"] = {"type": "object"}
    validator = OAS30Validator(strict)
    errors = [
        f"{_path(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]
    if not errors:  # CEL rules run only on objects that passed the schema, as in the API server
        errors = _cel_errors(schema, obj, [])
    return errors


def _load_yaml(path: Path) -> Any:
    import yaml

    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def load_crd(path: Path) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="session")
def our_crds() -> dict[str, dict[str, Any]]:
    """Kind -> the CRD this project ships in crds/."""
    crds = [load_crd(p) for p in sorted((REPO_ROOT / "crds").glob("*.yaml"))]
    return {c["spec"]["names"]["kind"]: c for c in crds}


@pytest.fixture(scope="session")
def upstream_crds(shared_crd_schemas: Path) -> dict[str, dict[str, Any]]:
    """Kind -> upstream CRD (RayJob, RayCluster, GRPCRoute, HTTPRoute, ServiceMonitor, ...)."""
    crds = [load_crd(p) for p in sorted(shared_crd_schemas.glob("*.yaml"))]
    return {c["spec"]["names"]["kind"]: c for c in crds}


@pytest.fixture(scope="session")
def validate_object(
    our_crds: dict[str, dict[str, Any]],
) -> Callable[[dict[str, Any]], list[str]]:
    """Validate one of our custom objects against the CRD shipped in crds/."""

    def _validate(obj: dict[str, Any]) -> list[str]:
        return validate_custom_object(our_crds[obj["kind"]], obj)

    return _validate


# --- Validation of rendered objects (what the operator and renderers produce) ------------
#
# Custom kinds against the upstream CRD schemas, including fields a real API server would
# silently prune; core kinds with kubernetes-validate.

K8S_VERSION = "1.32.0"


def _pruned(obj: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            if key not in schema["properties"]:
                yield f"{path}.{key}"
            else:
                yield from _pruned(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            yield from _pruned(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            yield from _pruned(item, schema["items"], f"{path}[{i}]")


def upstream_schemas(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for file in folder.glob("*.yaml"):
        crd = _load_yaml(file)
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            out[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return out


@pytest.fixture(scope="session")
def validate_rendered(shared_crd_schemas: Path) -> Callable[[dict[str, Any]], None]:
    """Raise when ``obj`` would be refused (or silently pruned) by a real API server."""
    schemas = upstream_schemas(shared_crd_schemas)

    def validate(obj: dict[str, Any]) -> None:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            schema = schemas[key]
            body = {k: v for k, v in obj.items() if k != "status"}
            from openapi_schema_validator import OAS30Validator

            OAS30Validator(schema).validate(body)
            pruned = [p for p in _pruned(body, schema, "") if not p.startswith(".metadata")]
            assert not pruned, f"{obj['kind']} fields unknown to the CRD schema: {pruned}"
        else:
            import kubernetes_validate

            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

    return validate
