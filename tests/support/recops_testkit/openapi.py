"""The OpenAPI v3 documents a real API server publishes for custom resources.

kubectl reads them for two things: ``kubectl explain`` finds a kind's schema in
``components.schemas`` by its ``x-kubernetes-group-version-kind``, and ``kubectl apply``
sends ``fieldValidation=Strict`` (instead of validating on its own) when the PATCH
operation of the kind's path lists that query parameter. Only the groups of our CRDs are
published; kubectl treats the other groups as it does on a server without OpenAPI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from recops_testkit.admission import CustomKind

Obj = dict[str, Any]
ROOT = "/openapi/v3"


def group_version_path(kind: CustomKind) -> str:
    return f"apis/{kind.group}/{kind.version}"


def root_document(kinds: Iterable[CustomKind]) -> Obj:
    """``GET /openapi/v3``: where each group-version's document lives (with a hash, as
    kubectl caches them by URL)."""
    by_gv: dict[str, list[CustomKind]] = {}
    for kind in kinds:
        by_gv.setdefault(group_version_path(kind), []).append(kind)
    paths = {}
    for gv, members in sorted(by_gv.items()):
        digest = hashlib.sha256(json.dumps(group_version_document(members)).encode()).hexdigest()
        paths[gv] = {"serverRelativeURL": f"{ROOT}/{gv}?hash={digest[:32].upper()}"}
    return {"paths": paths}


def group_version_document(kinds: Iterable[CustomKind]) -> Obj:
    """``GET /openapi/v3/apis/<group>/<version>``: each kind's schema and the paths of its
    objects."""
    schemas: Obj = {}
    paths: Obj = {}
    for kind in kinds:
        gvk = [{"group": kind.group, "version": kind.version, "kind": kind.kind}]
        name = f"{'.'.join(reversed(kind.group.split('.')))}.{kind.version}.{kind.kind}"
        schemas[name] = {**_with_meta(kind.schema), "x-kubernetes-group-version-kind": gvk}
        ref = {"$ref": f"#/components/schemas/{name}"}
        body = {"content": {"application/json": {"schema": ref}}}
        item = f"/apis/{kind.group}/{kind.version}/namespaces/{{namespace}}/{kind.plural}/{{name}}"
        operation = {"x-kubernetes-group-version-kind": gvk[0], "responses": {"200": body}}
        paths[item] = {
            "get": {**operation, "x-kubernetes-action": "get"},
            "patch": {
                **operation,
                "x-kubernetes-action": "patch",
                "parameters": [_query("fieldValidation"), _query("dryRun")],
                "requestBody": body,
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _with_meta(schema: Obj) -> Obj:
    properties = {
        "apiVersion": {"type": "string", "description": "APIVersion of this representation."},
        "kind": {"type": "string", "description": "Kind is the REST resource of this object."},
        "metadata": {"type": "object", "description": "Standard object's metadata."},
        **schema.get("properties", {}),
    }
    return {**schema, "properties": properties}


def _query(name: str) -> Obj:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
