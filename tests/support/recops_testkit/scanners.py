"""The security scanners of `make scan` (issue 27): checkov over the rendered chart (default,
GPU and highly available values), the operator's dry run of every example RecModel,
terraform/ and docker/; bandit over the packages; hadolint over the Dockerfiles.

Every accepted finding is listed, with its reason, in security/skips.yaml; any other
failed check, and any medium or high bandit finding not skipped there (or by a `# nosec`
at its line), fails the run. The scanners live in their own virtualenv (``--bin``), so
this module only runs them and reads their JSON.

    python -m recops_testkit.scanners --bin .venv/scanners/bin
"""

from __future__ import annotations

import argparse
import json
import subprocess  # nosec B404: runs the pinned scanners with fixed arguments
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recops_testkit.schemas import REPO_ROOT

SKIPS = REPO_ROOT / "security" / "skips.yaml"
PACKAGES = (
    "contracts/recops_contracts",
    "operator/recops_operator",
    "runtime/recops_runtime",
    "trainer/recops_trainer",
    "cli/recops_cli",
)
GENERATED = "runtime/recops_runtime/proto"  # protoc's output
HA_VALUES: dict[str, Any] = {"operator": {"replicas": 2}}
Obj = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    scanner: str  # checkov/<framework>, bandit or hadolint
    check: str
    resource: str  # checkov's resource id, or the file
    where: str

    def __str__(self) -> str:
        return f"{self.scanner} {self.check} {self.resource} ({self.where})"


@dataclass
class Skips:
    checkov: list[Obj] = field(default_factory=list)
    bandit: list[Obj] = field(default_factory=list)
    hadolint: list[Obj] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path = SKIPS) -> Skips:
        data = yaml.safe_load(path.read_text()) or {}
        skips = cls(**{k: data.get(k) or [] for k in ("checkov", "bandit", "hadolint")})
        for entry in (*skips.checkov, *skips.bandit, *skips.hadolint):
            if not str(entry.get("reason", "")).strip():
                raise ValueError(f"{path}: {entry.get('id')} gives no reason")
        return skips

    def accepts(self, finding: Finding) -> bool:
        if finding.scanner.startswith("checkov/"):
            framework = finding.scanner.split("/", 1)[1]
            return any(
                e["id"] == finding.check
                and framework in e.get("frameworks", [framework])
                and finding.resource in e.get("resources", [finding.resource])
                for e in self.checkov
            )
        if finding.scanner == "bandit":
            return any(
                e["id"] == finding.check and finding.resource in e.get("paths", [])
                for e in self.bandit
            )
        return any(e["id"] == finding.check for e in self.hadolint)


def render_manifests(out: Path) -> list[Path]:
    """The chart under each values file and the dry run of every example, one file each."""
    import helm_python

    from recops_operator.dry_run import render_all
    from recops_operator.settings import OperatorSettings

    chart = REPO_ROOT / "charts" / "recops"
    gpu = yaml.safe_load((chart / "ci" / "gpu-values.yaml").read_text())
    files = []
    with helm_python.Chart.load(str(chart)) as loaded:
        for name, values in (("default", {}), ("gpu", gpu), ("ha", HA_VALUES)):
            manifests = loaded.render(values=values, name="recops", namespace="recops-system")
            docs = [
                doc
                for template, text in sorted(manifests.items())
                if template.endswith((".yaml", ".yml")) and "/crds/" not in template
                for doc in yaml.safe_load_all(text)
                if doc
            ]
            files.append(_write(out / f"chart-{name}.yaml", docs))
    for path, recmodel in _example_recmodels():
        for kuberay in (True, False):
            objs = render_all(OperatorSettings(), recmodel, kuberay=kuberay)
            job = "rayjob" if kuberay else "job"
            name = f"example-{path.parent.name}-{recmodel['metadata']['name']}-{job}.yaml"
            files.append(_write(out / name, objs))
    return files


def _example_recmodels() -> Iterator[tuple[Path, Obj]]:
    for path in sorted((REPO_ROOT / "examples").rglob("*.yaml")):
        if "testdata" in path.parts:  # Argo CD health checks' made-up statuses
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "RecModel":
                yield path, doc


def _write(path: Path, docs: list[Obj]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _run(args: list[str]) -> str:
    # Scanners exit non-zero when they find something: the JSON says what.
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # nosec B603
    if not done.stdout.strip():
        raise RuntimeError(f"{args[0]} printed nothing: {done.stderr[-2000:]}")
    return done.stdout


def checkov(bin_dir: Path, framework: str, directory: Path) -> tuple[int, list[Finding]]:
    """Passed checks and failed findings of checkov over ``directory``."""
    out = _run(
        [
            str(bin_dir / "checkov"),
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ]
    )
    reports = json.loads(out)
    passed, failed = 0, []
    for report in reports if isinstance(reports, list) else [reports]:
        passed += report.get("summary", {}).get("passed", 0)
        for check in report.get("results", {}).get("failed_checks", []):
            failed.append(
                Finding(
                    f"checkov/{framework}",
                    check["check_id"],
                    check["resource"],
                    f"{check.get('file_path', '')}: {check.get('check_name', '')}",
                )
            )
    return passed, failed


def bandit(bin_dir: Path) -> list[Finding]:
    """Medium and high findings of bandit over the packages (``# nosec`` honoured)."""
    paths = [str(REPO_ROOT / p) for p in PACKAGES]
    excluded = str(REPO_ROOT / GENERATED)
    report = ["-f", "json", "--severity-level", "medium"]
    out = _run([str(bin_dir / "bandit"), "-q", "-r", *paths, "-x", excluded, *report])
    return [
        Finding(
            "bandit",
            r["test_id"],
            str(Path(r["filename"]).resolve().relative_to(REPO_ROOT)),
            f"line {r['line_number']}: {r['issue_text']}",
        )
        for r in json.loads(out)["results"]
        if r["issue_severity"] in ("MEDIUM", "HIGH")
    ]


def hadolint(skips: Skips) -> list[Finding]:
    """hadolint over docker/*.Dockerfile with docker/hadolint.yaml."""
    tool = Path(sys.executable).parent / "hadolint"
    docker = REPO_ROOT / "docker"
    ignored = [a for e in skips.hadolint for a in ("--ignore", e["id"])]
    files = sorted(str(p) for p in docker.glob("*.Dockerfile"))
    done = subprocess.run(  # nosec B603: the project's pinned hadolint, fixed arguments
        [str(tool), "--config", str(docker / "hadolint.yaml"), *ignored, "-f", "json", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    return [
        Finding("hadolint", r["code"], r["file"], f"line {r['line']}: {r['message']}")
        for r in json.loads(done.stdout or "[]")
    ]


def scan(bin_dir: Path) -> int:
    """Runs every scanner and prints what fails; the exit status of `make scan`."""
    skips = Skips.load()
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="recops-scan-") as tmp:
        render_manifests(Path(tmp))
        for framework, directory in (
            ("kubernetes", Path(tmp)),
            ("terraform", REPO_ROOT / "terraform"),
            ("dockerfile", REPO_ROOT / "docker"),
        ):
            passed, failed = checkov(bin_dir, framework, directory)
            unexplained = [f for f in failed if not skips.accepts(f)]
            print(
                f"checkov {framework}: {passed} passed, {len(failed)} failed, "
                f"{len(failed) - len(unexplained)} of them skipped in security/skips.yaml"
            )
            findings += unexplained
    found = bandit(bin_dir)
    unexplained = [f for f in found if not skips.accepts(f)]
    print(f"bandit: {len(found)} medium/high, {len(found) - len(unexplained)} skipped")
    findings += unexplained
    lint = hadolint(skips)
    print(f"hadolint: {len(lint)} findings")
    findings += lint
    for finding in findings:
        print(f"UNEXPLAINED {finding}")
    return 1 if findings else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, required=True, help="the scanners' virtualenv bin")
    sys.exit(scan(parser.parse_args().bin))


if __name__ == "__main__":
    main()
