"""Container images and the CI workflow, checked without a Docker engine: hadolint and
actionlint run on the real files, and the images agree with the chart and the operator on
names, ports and users. Building the images needs Docker (`make images`, and CI)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# docker/NAME.Dockerfile is published as recops-NAME (runtime-cpu as recops-runtime): the
# Makefile's `images` target and the workflow use this rule, the chart's values name them.
CHART_IMAGES = {
    "operator": "operator",
    "runtime-cpu": "runtimeCpu",
    "runtime-gpu": "runtimeGpu",
    "trainer": "trainer",
}


def tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (it comes with the dev extra)")
    return path


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_every_image_has_a_dockerfile() -> None:
    assert [p.name.removesuffix(".Dockerfile") for p in DOCKERFILES] == sorted(CHART_IMAGES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [
            tool("hadolint"),
            "--no-color",
            "--config",
            str(DOCKER / "hadolint.yaml"),
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--config", str(DOCKER / "hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3013" in result.stdout  # unpinned pip install


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_multi_stage_pinned_non_root_and_health_checked(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    args = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in steps if k == "ARG" and "=" in v}
    bases = [v.split()[0] for k, v in steps if k == "FROM"]
    assert len(bases) >= 2, "build in one stage, run from a clean one"
    for base in bases:
        image = args.get(base.strip("${}"), base) if base.startswith("$") else base
        assert re.search(r":[0-9][\w.-]*$", image), f"{image}: pin the base image's version"
    installs = [v for k, v in steps if k == "RUN" and "pip install" in v]
    for run in installs:
        for command in re.split(r"&&", run):
            if "pip install" in command and "torch==" not in command and "==" not in command:
                assert re.search(r"-c \S*constraints\.txt", command), command
    final = final_stage(dockerfile)
    users = [v for k, v in final if k == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert any(k == "HEALTHCHECK" and "NONE" not in v for k, v in final)


def test_operator_image_installs_no_machine_learning_stack() -> None:
    installs = " ".join(v for k, v in instructions(DOCKER / "operator.Dockerfile") if k == "RUN")
    assert '".[operator]"' in installs
    for heavy in ("torch", "ray", "onnxruntime", "openvino", "trainer", "runtime]"):
        assert heavy not in installs
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert not [d for d in extras["operator"] if re.match(r"(torch|ray|onnx|openvino|mlflow)", d)]


def test_images_expose_the_ports_the_cluster_uses() -> None:
    from recops_operator.render import serving
    from recops_operator.settings import OperatorSettings

    def exposed(name: str) -> set[int]:
        steps = final_stage(DOCKER / f"{name}.Dockerfile")
        return {int(p) for k, v in steps if k == "EXPOSE" for p in v.split()}

    runtime_ports = {serving.GRPC_PORT, serving.HTTP_PORT, serving.METRICS_PORT}
    assert exposed("runtime-cpu") == runtime_ports == exposed("runtime-gpu")
    values = yaml.safe_load((ROOT / "charts/recops/values.yaml").read_text())
    assert {values["operator"]["healthPort"]} == exposed("operator")
    liveness = OperatorSettings.model_fields["liveness_endpoint"].default
    assert f":{values['operator']['healthPort']}/" in liveness


def test_chart_terraform_and_ci_name_the_same_images() -> None:
    values = yaml.safe_load((ROOT / "charts/recops/values.yaml").read_text())
    for dockerfile, key in CHART_IMAGES.items():
        published = f"recops-{dockerfile.removesuffix('-cpu')}"
        assert values["images"][key]["repository"] == f"ghcr.io/recops/{published}"
    terraform = (ROOT / "terraform/modules/recops-platform/recops.tf").read_text()
    for dockerfile, key in CHART_IMAGES.items():
        assert re.search(rf'{key}\s*=\s*"recops-{dockerfile.removesuffix("-cpu")}"', terraform)
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert sorted(workflow["jobs"]["images"]["strategy"]["matrix"]["image"]) == sorted(CHART_IMAGES)


def test_ci_runs_make_test_and_builds_every_image() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    runs = [s.get("run", "") for s in workflow["jobs"]["test"]["steps"]]
    assert any(r.startswith("make test") for r in runs)
    build = next(
        s
        for s in workflow["jobs"]["images"]["steps"]
        if s.get("uses", "").startswith("docker/build-push-action")
    )
    assert build["with"]["file"] == "docker/${{ matrix.image }}.Dockerfile"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow: Path) -> None:
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("matrix.image", "matrix.imag"))
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "imag" in result.stdout


def test_hand_written_yaml_passes_yamllint() -> None:
    paths = [
        ".github/workflows",
        "examples/gitops",
        "charts/recops/Chart.yaml",
        "charts/recops/values.yaml",
        "charts/recops/ci",
        "charts/recops/files/rbac-rules.yaml",
        "docker/hadolint.yaml",
        "terraform/modules/recops-platform/charts/recops-gateway/values.yaml",
        "terraform/modules/recops-platform/charts/recops-gateway/Chart.yaml",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-f",
            "parsable",
            "-c",
            str(Path(__file__).with_name("yamllint.yaml")),
            *paths,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named yamllint" in result.stderr:
        pytest.skip("yamllint is not installed (it comes with the dev extra)")
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_images_builds_every_dockerfile_under_its_published_name(tmp_path: Path) -> None:
    """`make images` run against a stand-in `docker` that records what it is asked to build."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    log = tmp_path / "docker.log"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    result = subprocess.run(
        [make, "--no-print-directory", "images", "IMAGE_REGISTRY=example.test/ml", "IMAGE_TAG=t1"],
        cwd=ROOT,
        env={"PATH": f"{fake.parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    builds = [line.split() for line in log.read_text().splitlines() if line.startswith("build")]
    built = {b[b.index("-f") + 1]: b[b.index("-t") + 1] for b in builds}
    assert built == {
        f"docker/{name}.Dockerfile": f"example.test/ml/recops-{name.removesuffix('-cpu')}:t1"
        for name in CHART_IMAGES
    }
