"""The one list of accepted scanner findings (security/skips.yaml, issue 27): each has a
reason, the hadolint rules match docker/hadolint.yaml, and the filter only lets through
what an entry names."""

from __future__ import annotations

from pathlib import Path

import yaml

from recops_testkit.scanners import SKIPS, Finding, Skips


def test_every_skip_gives_a_reason() -> None:
    skips = Skips.load()
    assert skips.checkov and skips.bandit and skips.hadolint
    for entry in (*skips.checkov, *skips.bandit, *skips.hadolint):
        assert len(entry["reason"].split()) >= 8, entry["id"]


def test_hadolint_ignores_exactly_the_listed_rules(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "docker" / "hadolint.yaml").read_text())
    assert sorted(config["ignored"]) == sorted(e["id"] for e in Skips.load().hadolint)


def test_a_skip_scoped_to_resources_passes_only_those() -> None:
    skips = Skips.load()
    operator = Finding(
        "checkov/kubernetes", "CKV_K8S_38", "Deployment.recops-system.recops-operator", ""
    )
    serving = Finding("checkov/kubernetes", "CKV_K8S_38", "Deployment.ml.movies-1-cpu", "")
    assert skips.accepts(operator)
    assert not skips.accepts(serving)
    assert not skips.accepts(Finding("checkov/terraform", "CKV_K8S_11", "x", ""))
    assert not skips.accepts(Finding("bandit", "B104", "operator/recops_operator/cli.py", ""))


def test_a_skip_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "skips.yaml"
    path.write_text("checkov:\n  - id: CKV_K8S_11\n    frameworks: [kubernetes]\n")
    try:
        Skips.load(path)
    except ValueError as err:
        assert "CKV_K8S_11" in str(err)
    else:
        raise AssertionError("a skip without a reason was accepted")
    assert SKIPS.is_file()
