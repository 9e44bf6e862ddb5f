"""The checked-in CRDs are what the models generate, and carry what kubectl users rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recops_cli.main import app


def test_crds_check_passes_on_the_committed_files(repo_root: Path) -> None:
    result = CliRunner().invoke(app, ["crds", "--check", "--out", str(repo_root / "crds")])
    assert result.exit_code == 0, result.output


def test_crds_check_fails_when_a_file_is_stale(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["crds", "--out", str(tmp_path)]).exit_code == 0
    target = tmp_path / "recops.io_rollouts.yaml"
    target.write_text(target.read_text().replace("Canary steps", "Steps"), encoding="utf-8")
    result = runner.invoke(app, ["crds", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "recops.io_rollouts.yaml" in result.output


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema properties that have no description (kubectl explain shows nothing)."""
    missing = []
    for name, sub in schema.get("properties", {}).items():
        if name not in {"apiVersion", "kind", "metadata"} and not sub.get("description"):
            missing.append(f"{path}.{name}")
        missing += _walk(sub, f"{path}.{name}")
        if "items" in sub:
            missing += _walk(sub["items"], f"{path}.{name}[]")
    return missing


@pytest.mark.parametrize("kind", ["RecModel", "TrainingRun", "Rollout"])
def test_every_field_is_described(our_crds: dict[str, dict[str, Any]], kind: str) -> None:
    schema = our_crds[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


@pytest.mark.parametrize("kind", ["RecModel", "TrainingRun", "Rollout"])
def test_kubectl_niceties(our_crds: dict[str, dict[str, Any]], kind: str) -> None:
    crd = our_crds[kind]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert "recops" in crd["spec"]["names"]["categories"]
    assert crd["spec"]["names"]["shortNames"]
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Phase", "Age"} <= columns


def test_structural_schema_has_no_json_schema_only_keywords(
    our_crds: dict[str, dict[str, Any]],
) -> None:
    """The API server refuses $ref, anyOf with types, const and numeric exclusive bounds."""
    text = str(our_crds)
    for keyword in ("$ref", "'const'", "'title'", "'anyOf'"):
        assert keyword not in text


def test_recmodel_columns_show_versions_and_weights(our_crds: dict[str, dict[str, Any]]) -> None:
    columns = {
        c["name"] for c in our_crds["RecModel"]["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert {"Stable", "Candidate", "Weights"} <= columns
