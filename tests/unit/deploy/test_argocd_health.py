"""Argo CD health checks: each Lua script, run as Argo CD runs it (Lua 5.1, `obj` global),
turns sample objects in every state into the health an Argo CD user should see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from recops_testkit.schemas import object_errors, validate_object

lua51 = pytest.importorskip("lupa.lua51")

GITOPS = Path(__file__).resolve().parents[3] / "examples" / "gitops"
CUSTOMIZATIONS = GITOPS / "argocd" / "resource_customizations" / "recops.io"
KINDS = ("RecModel", "Rollout", "TrainingRun")


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    assert result is not None, "the script returned nothing"
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def cases() -> list[Any]:
    out = []
    for kind in KINDS:
        spec = yaml.safe_load((CUSTOMIZATIONS / kind / "health_test.yaml").read_text())
        for case in spec["tests"]:
            out.append(pytest.param(kind, case, id=f"{kind}-{Path(case['inputPath']).stem}"))
    return out


@pytest.mark.parametrize(("kind", "case"), cases())
def test_health_script_reports_the_expected_state(kind: str, case: dict[str, Any]) -> None:
    script = (CUSTOMIZATIONS / kind / "health.lua").read_text()
    obj = yaml.safe_load((CUSTOMIZATIONS / kind / case["inputPath"]).read_text())
    assert run_health(script, obj) == case["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_argo_health_state_that_applies_is_covered(kind: str) -> None:
    spec = yaml.safe_load((CUSTOMIZATIONS / kind / "health_test.yaml").read_text())
    seen = {case["healthStatus"]["status"] for case in spec["tests"]}
    expected = {"Healthy", "Progressing", "Degraded"} | (
        {"Suspended"} if kind == "Rollout" else set()
    )
    assert seen == expected


@pytest.mark.parametrize("kind", KINDS)
def test_samples_are_objects_the_api_server_accepts(kind: str) -> None:
    """Health scripts read real status shapes: every sample validates against our CRD."""
    for path in sorted((CUSTOMIZATIONS / kind / "testdata").glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        assert obj["kind"] == kind
        errors = object_errors(obj)
        assert not errors, f"{path.name}: {errors}"


def test_argocd_cm_carries_the_tested_scripts() -> None:
    cm = yaml.safe_load((GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    for kind in KINDS:
        embedded = cm["data"][f"resource.customizations.health.recops.io_{kind}"]
        tested = (CUSTOMIZATIONS / kind / "health.lua").read_text()
        assert embedded == tested, (
            f"argocd-cm.yaml's {kind} script differs from {kind}/health.lua: copy it over"
        )


def test_applications_sync_folders_that_exist(repo_root: Path) -> None:
    apps = {p.stem: yaml.safe_load(p.read_text()) for p in (GITOPS / "applications").glob("*.yaml")}
    assert set(apps) == {"recops", "models"}
    for app in apps.values():
        assert app["kind"] == "Application"
        assert (repo_root / app["spec"]["source"]["path"]).is_dir()
    assert (repo_root / apps["recops"]["spec"]["source"]["path"] / "Chart.yaml").is_file()
    # The models sync after the chart that brings their CRDs.
    waves = {
        n: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for n, a in apps.items()
    }
    assert waves["recops"] < waves["models"]


def test_synced_models_are_valid_resources() -> None:
    """What the models Application syncs: a RecModel and a Rollout the operator's own models
    and the CRDs accept, and the engines' volume claim."""
    from recops_operator.api.recmodel import RecModel
    from recops_operator.api.rollout import Rollout
    from recops_operator.settings import OperatorSettings

    models = {"RecModel": RecModel, "Rollout": Rollout}
    objects = [yaml.safe_load(p.read_text()) for p in sorted((GITOPS / "models").glob("*.yaml"))]
    for obj in objects:
        validate_object(obj)
        if obj["kind"] in models:
            models[obj["kind"]].model_validate(obj)
    assert sorted(o["kind"] for o in objects) == ["PersistentVolumeClaim", "RecModel", "Rollout"]
    (claim,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == OperatorSettings.model_fields["artifacts_claim"].default
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert len({o["metadata"]["namespace"] for o in objects}) == 1
