"""Generate CustomResourceDefinitions from the typed models.

Pydantic writes JSON Schema (draft 2020-12); Kubernetes wants a structural OpenAPI v3.0
schema. The translation inlines ``$ref``s, turns ``anyOf [X, null]`` into ``nullable``,
turns numeric ``exclusiveMinimum`` into the OpenAPI 3.0 boolean form and drops what the
API server refuses (``title``, ``additionalProperties: false``, ``const``). Unknown
fields are then pruned by the API server and refused by ``kubectl --validate=strict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from recops_operator.api.base import GROUP, VERSION
from recops_operator.api.recmodel import RecModelSpec, RecModelStatus
from recops_operator.api.rollout import RolloutSpec, RolloutStatus
from recops_operator.api.trainingrun import TrainingRunSpec, TrainingRunStatus

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CrdSpec:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    columns: tuple[PrinterColumn, ...]


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

CRDS: tuple[CrdSpec, ...] = (
    CrdSpec(
        kind="RecModel",
        plural="recmodels",
        singular="recmodel",
        short_names=("rm", "recm"),
        description="A sequential recommender (SSE-PT) that recops trains, compiles, serves "
        "and rolls out.",
        spec_model=RecModelSpec,
        status_model=RecModelStatus,
        columns=(
            PrinterColumn("Phase", ".status.phase", description="Lifecycle phase."),
            PrinterColumn("Stable", ".status.stableVersion", description="Serving version."),
            PrinterColumn("Candidate", ".status.candidateVersion", description="Candidate."),
            PrinterColumn("Weights", ".status.weights", description="Traffic split."),
            PrinterColumn(
                "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready."
            ),
            AGE,
        ),
    ),
    CrdSpec(
        kind="TrainingRun",
        plural="trainingruns",
        singular="trainingrun",
        short_names=("tr",),
        description="One training or tuning job of a RecModel, run on Ray.",
        spec_model=TrainingRunSpec,
        status_model=TrainingRunStatus,
        columns=(
            PrinterColumn("Model", ".spec.recModel", description="RecModel."),
            PrinterColumn("Mode", ".spec.mode", description="train or tune."),
            PrinterColumn("Phase", ".status.phase", description="State machine phase."),
            PrinterColumn("Version", ".status.modelVersion", description="Registered version."),
            PrinterColumn("Gate", ".status.gate.verdict", description="Offline gate."),
            PrinterColumn("Reason", ".status.reason", description="Reason.", priority=1),
            AGE,
        ),
    ),
    CrdSpec(
        kind="Rollout",
        plural="rollouts",
        singular="rollout",
        short_names=("ro",),
        description="Progressive delivery of a RecModel's candidate version on live metrics.",
        spec_model=RolloutSpec,
        status_model=RolloutStatus,
        columns=(
            PrinterColumn("Model", ".spec.recModel", description="RecModel."),
            PrinterColumn("Candidate", ".spec.candidateVersion", description="Candidate."),
            PrinterColumn("Step", ".status.currentStepIndex", "integer", "Current step."),
            PrinterColumn("Weights", ".status.weightsText", description="Traffic split."),
            PrinterColumn("Phase", ".status.phase", description="Phase."),
            PrinterColumn("Reason", ".status.reason", description="Last decision.", priority=1),
            AGE,
        ),
    ),
)

_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, JsonSchema]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        out[key] = _resolve(value, defs) if key != "default" else value
    return _to_openapi(out)


def _to_openapi(schema: JsonSchema) -> JsonSchema:
    any_of = schema.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) < len(any_of) and len(non_null) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = {**non_null[0], **rest, "nullable": True}
            if schema.get("default", "unset") is None:
                del schema["default"]
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        value = schema.get(bound)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            schema["minimum" if bound == "exclusiveMinimum" else "maximum"] = value
            schema[bound] = True
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]
    if "enum" in schema and "type" not in schema:
        schema["type"] = "string"
    if (
        schema.get("type") == "object"
        and "properties" not in schema
        and ("additionalProperties" not in schema)
    ):
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def openapi_schema(model: type[BaseModel]) -> JsonSchema:
    """The OpenAPI v3.0 structural schema of ``model`` as the API server takes it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    resolved: JsonSchema = _resolve(raw, defs)
    return resolved


def render_crd(crd: CrdSpec) -> JsonSchema:
    spec_schema = openapi_schema(crd.spec_model)
    status_schema = openapi_schema(crd.status_model)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.singular,
                "shortNames": list(crd.short_names),
                "categories": ["recops"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            "description": c.description or c.name,
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in crd.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": crd.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_filename(crd: CrdSpec) -> str:
    return f"{GROUP}_{crd.plural}.yaml"


def render_all() -> dict[str, str]:
    """File name to YAML text for every CRD."""
    header = "# Generated by `recops crds` from the typed models; do not edit.\n"
    return {
        crd_filename(c): header + yaml.safe_dump(render_crd(c), sort_keys=False, width=100)
        for c in CRDS
    }


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_crds(directory: Path) -> list[str]:
    """Names of CRD files that are missing or differ from the models."""
    stale = []
    for name, text in render_all().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
