"""Validation of rendered objects: core kinds with kubernetes-validate, custom kinds against
the upstream CRD schemas (including a check for fields a real API server would prune)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

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


def crd_schemas(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for file in folder.glob("*.yaml"):
        crd = yaml.load(file.read_text(), Loader=yaml.CSafeLoader)
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            out[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return out


@pytest.fixture(scope="session")
def validate_object(shared_crd_schemas: Path) -> Callable[[dict[str, Any]], None]:
    """Raise when ``obj`` would be refused (or silently pruned) by a real API server."""
    schemas = crd_schemas(shared_crd_schemas)

    def validate(obj: dict[str, Any]) -> None:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            schema = schemas[key]
            body = {k: v for k, v in obj.items() if k != "status"}
            OAS30Validator(schema).validate(body)
            pruned = [p for p in _pruned(body, schema, "") if not p.startswith(".metadata")]
            assert not pruned, f"{obj['kind']} fields unknown to the CRD schema: {pruned}"
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

    return validate
