"""Issue 27, findings 6 and 13: every pod the operator renders (RayJob head, workers and
submitter, the fallback Job, compile Jobs, serving) passes Pod Security "restricted",
mounts no service-account token, bounds its emptyDirs and its ephemeral storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from recops_operator.dry_run import render_all
from recops_operator.settings import OperatorSettings
from recops_testkit.pod_security import hardening_problems, pod_templates, restricted_problems
from recops_testkit.schemas import REPO_ROOT

EXAMPLES = sorted(
    p
    for p in (REPO_ROOT / "examples").rglob("*.yaml")
    if "testdata" not in p.parts
    and any(
        isinstance(d, dict) and d.get("kind") == "RecModel"
        for d in yaml.safe_load_all(p.read_text())
    )
)


def _recmodels(path: Path) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(path.read_text())
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "RecModel"]


def _pods(kuberay: bool) -> list[tuple[str, dict[str, Any]]]:
    settings = OperatorSettings(feedback_claim="recops-feedback")
    pods = []
    for path in EXAMPLES:
        for rm in _recmodels(path):
            for obj in render_all(settings, rm, kuberay=kuberay):
                pods += [(f"{path.name} {w}", p) for w, p in pod_templates(obj)]
    return pods


@pytest.mark.parametrize("kuberay", [True, False], ids=["rayjob", "fallback-job"])
def test_every_rendered_pod_passes_the_restricted_standard(kuberay: bool) -> None:
    pods = _pods(kuberay)
    wheres = " ".join(w for w, _ in pods)
    assert "Deployment/" in wheres and "Job/" in wheres
    if kuberay:
        assert all(part in wheres for part in (" head", " workers", " submitter"))
    problems = {w: restricted_problems(p) + hardening_problems(p) for w, p in pods}
    assert {w: p for w, p in problems.items() if p} == {}


def test_the_checker_catches_what_the_training_pods_lacked_before() -> None:
    # The RayJob head as rendered before issue 27: no capabilities drop, no seccomp
    # profile, a writable root filesystem, a mounted token and an unbounded emptyDir.
    before = {
        "containers": [
            {
                "name": "ray-head",
                "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
                "resources": {"limits": {"memory": "8Gi"}},
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    restricted = restricted_problems(before)
    assert any("drop ALL" in p for p in restricted)
    assert any("seccompProfile" in p for p in restricted)
    hardening = hardening_problems(before)
    assert "the service-account token is mounted" in hardening
    assert "emptyDir scratch has no sizeLimit" in hardening
    assert any("root filesystem is writable" in p for p in hardening)
    assert any("ephemeral-storage" in p for p in hardening)
    assert restricted_problems({"containers": [{"name": "c"}], "hostNetwork": True})


def test_a_rayjob_without_a_submitter_template_is_flagged() -> None:
    rayjob = {
        "kind": "RayJob",
        "metadata": {"name": "r"},
        "spec": {
            "rayClusterSpec": {"headGroupSpec": {"template": {"spec": {"containers": []}}}},
        },
    }
    wheres = [w for w, _ in pod_templates(rayjob)]
    assert "RayJob/r submitter (KubeRay's default)" in wheres
