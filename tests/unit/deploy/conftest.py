"""Fixtures for the deploy checks: render the chart offline and validate what it renders."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

Obj = dict[str, Any]
Validate = Callable[[Obj], None]

CHART = Path(__file__).resolve().parents[3] / "charts" / "recops"
KUBERNETES_VERSION = "1.32.0"


def strict(schema: Any) -> Any:
    """An OpenAPI schema that refuses unknown fields, as `kubectl apply --validate=strict` does
    (the API server would otherwise drop them silently: a typo would never take effect)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


class CrdValidators:
    """Validators of CRD kinds, each built from its CRD file on first use (the upstream files
    are large: only the kinds the chart renders are parsed)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.cache: dict[tuple[str, str], jsonschema.Draft4Validator | None] = {}

    def get(self, api_version: str, kind: str) -> jsonschema.Draft4Validator | None:
        key = (api_version, kind)
        if key not in self.cache:
            self.cache[key] = self._load(api_version, kind)
        return self.cache[key]

    def _load(self, api_version: str, kind: str) -> jsonschema.Draft4Validator | None:
        group, _, version = api_version.rpartition("/")
        for folder in self.folders:
            path = folder / f"{group}_{kind.lower()}s.yaml"
            if not path.is_file():
                continue
            crd = yaml.safe_load(path.read_text())
            for served in crd["spec"]["versions"]:
                if served["name"] != version:
                    continue
                schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
                # metadata is checked by the API server itself, not by the CRD's schema.
                props = schema.setdefault("properties", {})
                props.update(
                    metadata={"type": "object"},
                    apiVersion={"type": "string"},
                    kind={"type": "string"},
                )
                return jsonschema.Draft4Validator(strict(schema))
        return None


@pytest.fixture(scope="session")
def validate_object(shared_crd_schemas: Path) -> Validate:
    """Validate one rendered object: CRD kinds against their CRD (upstream, or the chart's
    own), the rest with kubernetes-validate; an object of a kind nobody can validate fails."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    validators = CrdValidators([shared_crd_schemas, CHART / "crds"])

    def validate(obj: Obj) -> None:
        name = f"{obj['kind']} {obj['metadata'].get('name')}"
        validator = validators.get(obj["apiVersion"], obj["kind"])
        if validator is not None:
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
            assert not errors, f"{name}: " + "; ".join(
                f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors
            )
            return
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{name}: no schema to validate {obj['apiVersion']} {obj['kind']} against")
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{name}: {err.message} at {'.'.join(map(str, err.path))}")

    return validate


@pytest.fixture(scope="session")
def helm() -> Any:
    return pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart")


@pytest.fixture(scope="session")
def chart(helm: Any) -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def render(chart: Any, values: Obj | None = None, namespace: str = "recops-system") -> list[Obj]:
    """Every object the chart renders for ``values``, in template order."""
    manifests = chart.render(values=values or {}, name="recops", namespace=namespace)
    objects = []
    for template, text in sorted(manifests.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


@pytest.fixture(scope="session")
def render_chart(chart: Any) -> Callable[..., list[Obj]]:
    def _render(values: Obj | None = None, namespace: str = "recops-system") -> list[Obj]:
        return render(chart, values, namespace)

    return _render


@pytest.fixture(scope="session")
def gpu_values() -> Obj:
    values: Obj = yaml.safe_load((CHART / "ci" / "gpu-values.yaml").read_text())
    return values
