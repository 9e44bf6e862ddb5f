"""Fixtures for the deploy checks: render the chart offline (tests validate what it renders
with `schemas.validate_object`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

Obj = dict[str, Any]

CHART = Path(__file__).resolve().parents[3] / "charts" / "recops"


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
