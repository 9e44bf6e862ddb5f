"""`recops operator render -f RECMODEL.yaml` prints every object the operator would create,
for every RecModel the examples ship, and each is one a real API server accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recops_operator.cli import app
from recops_testkit.schemas import REPO_ROOT, validate_object

# The Argo CD health checks' test data are RecModels with made-up statuses, not examples.
EXAMPLES = sorted(
    p
    for p in (REPO_ROOT / "examples").rglob("*.yaml")
    if "testdata" not in p.parts
    and any(
        isinstance(d, dict) and d.get("kind") == "RecModel"
        for d in yaml.safe_load_all(p.read_text())
    )
)
KINDS = {"TrainingRun", "ConfigMap", "Job", "Deployment", "Service", "GRPCRoute", "ServiceMonitor"}


def test_the_examples_hold_recmodels() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
@pytest.mark.parametrize("kuberay", [True, False])
def test_render_prints_every_object_of_an_example(
    path: Path, kuberay: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOPS_OPERATOR_SERVICE_MONITORS", "true")
    flag = "--kuberay" if kuberay else "--no-kuberay"
    result = CliRunner().invoke(app, ["render", "-f", str(path), flag])
    assert result.exit_code == 0, result.output
    objs = list(yaml.safe_load_all(result.stdout))
    kinds = {o["kind"] for o in objs}
    assert kinds >= KINDS
    assert ("RayJob" in kinds) is kuberay
    for obj in objs:
        validate_object(obj)


def test_render_names_the_field_the_operator_would_refuse(tmp_path: Path) -> None:
    recmodel = {
        "apiVersion": "recops.io/v1alpha1",
        "kind": "RecModel",
        "metadata": {"name": "movies", "namespace": "ml"},
        "spec": {"dataset": {"format": "synthetic"}, "targets": [{"name": "cpu-onnxruntime"}]},
    }
    path = tmp_path / "recmodel.yaml"
    path.write_text(yaml.safe_dump(recmodel))
    result = CliRunner().invoke(app, ["render", "-f", str(path)])
    assert result.exit_code == 2
    assert "spec.training.storageClaim" in result.output
