"""The image tier: the CPU images built with `make images` and run as their pods run.

Each image is built once per session (podman's layer cache also keeps the unchanged layers
between sessions); the builds' and runs' durations are printed at the end of the session.
Needs podman (rootful: root) or a running Docker engine: `make test-images` installs podman.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from recops_testkit.image_builds import (
    Build,
    build_base_image,
    host_pip_settings,
    image_builder,
    make_image,
    pip_build_flags,
)

Obj = dict[str, Any]
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("image tier timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what:<40} {seconds:7.1f} s")


@pytest.fixture(scope="session")
def builder() -> str:
    found = image_builder()
    if found is None:
        pytest.skip("no podman and no running Docker engine (make image-deps installs podman)")
    if found == "podman" and os.geteuid() != 0:
        pytest.skip("the image tier runs podman rootful: run it as root")
    return found


@pytest.fixture(scope="session")
def tier_dir() -> Iterator[Path]:
    """A folder the containers' user (10001) can read: pytest's own is private to root."""
    path = Path(tempfile.mkdtemp(prefix="recops-image-tier-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def build_image(builder: str, tier_dir: Path) -> Callable[[str], str]:
    """``build_image("trainer")`` builds docker/trainer.Dockerfile once; its image name."""
    start = time.monotonic()
    build_base_image(builder)
    TIMINGS["base image (docker/python-base.sh)"] = time.monotonic() - start
    # docker build takes no mounts: with Docker, builds use the Dockerfiles' own indexes.
    flags = pip_build_flags(host_pip_settings(), tier_dir) if builder == "podman" else []
    built: dict[str, Build] = {}

    def build(dockerfile: str) -> str:
        if dockerfile not in built:
            log = tier_dir / f"build-{dockerfile}.log"
            built[dockerfile] = make_image(dockerfile, builder, flags, log)
            TIMINGS[f"build {dockerfile}"] = built[dockerfile].seconds
        return built[dockerfile].image

    return build


@pytest.fixture
def pod_dir(tier_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A test's own folder for claims and config, writable by the containers' user (a claim
    mounted with fsGroup is)."""
    path: Path = tier_dir / request.node.name
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    return path


@pytest.fixture(scope="session")
def render() -> Callable[..., list[Obj]]:
    """``render(recmodel_yaml, *flags)``: what `recops operator render` prints, as objects."""

    def _render(path: Path, *flags: str) -> list[Obj]:
        recops = Path(sys.executable).parent / "recops"
        out = subprocess.run(
            [str(recops), "operator", "render", "-f", str(path), *flags],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return _render


@pytest.fixture
def termination_log(pod_dir: Path) -> Callable[[str], Path]:
    """``termination_log(pod)``: the file the kubelet mounts at terminationMessagePath."""

    def make(pod: str) -> Path:
        path = pod_dir / f"{pod}.termination-log"
        path.touch()
        path.chmod(0o666)
        return path

    return make


@pytest.fixture
def timed() -> Callable[[str, float], None]:
    def record(what: str, seconds: float) -> None:
        TIMINGS[what] = seconds

    return record
