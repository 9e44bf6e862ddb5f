"""Shared base for every custom-resource model: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from recops_contracts.wire import DnsName, WireModel

GROUP = "recops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A model version as the registry names it (MLflow versions are integers, others use tags).
ModelVersionStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*)$"),
]
# A duration such as "30s", "5m", "1h30m".
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(ms|s|m|h))+$")]


class ApiModel(WireModel):
    """Base of every spec and status model (the shared training blocks are WireModels too)."""


def cel_rules(*rules: tuple[str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for the CRD: the API server checks what OpenAPI cannot.

    Each rule mirrors a validator of the model, so kubectl and Python refuse the same specs.
    """
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata recops reads; the rest is kept as given."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: DnsName = Field(description="Object name.")
    namespace: str | None = Field(default=None, description="Object namespace.")
    labels: dict[str, str] | None = Field(default=None, description="Labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Annotations.")
    generation: int | None = Field(default=None, description="Spec generation (set by the API).")
    uid: str | None = Field(default=None, description="Object uid (set by the API).")
