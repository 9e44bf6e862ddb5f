"""Building the project's images for the image tier (tests/images): which builder, which
base image, and the host's pip settings carried into the builds.

The builds go through ``make images`` (the command a user runs). Where no registry is
reachable, ``docker/python-base.sh`` builds the stand-in base image. Builds install what
the host's pip would install (``make setup`` does the same for .venv): its index, local
wheel folders and CA bundle are mounted into podman's build steps, read-only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recops_testkit.prerequisites import REPO_ROOT

# podman settings of the tier (runc, ulimits a sandboxed host allows): tests/images/README.md.
CONTAINERS_CONF = REPO_ROOT / "tests" / "images" / "containers.conf"
BASE_IMAGE = "localhost/recops-python-base:3.11-bookworm"
# Where the tier's images are tagged: never the names CI publishes.
REGISTRY = "localhost"
TAG = "image-tier"
# The build steps' copy of the host's CA bundle (a path of its own, so the image's own
# bundle is not shadowed).
BUILD_CA = "/run/host-ca.crt"
_PIP_KEYS = ("index-url", "extra-index-url", "find-links", "cert")


def image_builder() -> str | None:
    """The Makefile's rule: a running Docker engine, else podman, else none."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
        if probe.returncode == 0:
            return "docker"
    return "podman" if shutil.which("podman") else None


def builder_env() -> dict[str, str]:
    """The environment for every podman call of the tier."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def image_name(dockerfile: str) -> str:
    """The tag ``make images`` gives docker/NAME.Dockerfile in the tier (-cpu dropped)."""
    return f"{REGISTRY}/recops-{dockerfile.removesuffix('-cpu')}:{TAG}"


def host_pip_settings() -> dict[str, str]:
    """The host pip's effective index, find-links and CA bundle (environment over files)."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, dict[str, str]] = {"file": {}, "env": {}}
    for line in listing.splitlines():
        match = re.fullmatch(r"(:env:|[a-z]+)\.([a-z-]+)='(.*)'", line.strip())
        if match and match[2] in _PIP_KEYS:
            found["env" if match[1] == ":env:" else "file"][match[2]] = match[3]
    return {**found["file"], **found["env"]}


def _local_folder(location: str) -> Path | None:
    """The host folder a pip location reads: a plain path or a file:// URL (a file index
    ``X/simple`` links to its siblings, so ``X`` is the folder)."""
    path = Path(urlsplit(location).path) if location.startswith("file:") else Path(location)
    if not path.is_absolute() or not path.exists():
        return None
    return path.parent if path.name == "simple" else path


def pip_build_flags(settings: Mapping[str, str], work: Path) -> list[str]:
    """podman build flags that give the build steps the host's pip settings.

    podman leaves the mount points as empty paths in the image; the tier's images are for
    the tier only (CI publishes images built without these flags).
    """
    lines = ["[global]"]
    flags: list[str] = []
    folders: set[Path] = set()
    for key in ("index-url", "extra-index-url", "find-links"):
        if value := settings.get(key):
            lines.append(f"{key} = {value}")
            folders.update(f for loc in value.split() if (f := _local_folder(loc)))
    if (cert := settings.get("cert")) and Path(cert).is_file():
        lines.append(f"cert = {BUILD_CA}")
        flags += ["-v", f"{cert}:{BUILD_CA}:ro"]
    conf = work / "pip.conf"
    conf.write_text("\n".join(lines) + "\n")
    flags += ["-v", f"{conf}:/etc/pip.conf:ro"]
    for folder in sorted(folders):
        flags += ["-v", f"{folder}:{folder}:ro"]
    # torch comes from the host's index too (the Dockerfiles default to PyTorch's).
    index = settings.get("index-url", "https://pypi.org/simple")
    return [*flags, "--build-arg", f"TORCH_INDEX_URL={index}"]


def build_base_image(builder: str) -> None:
    subprocess.run(
        [str(REPO_ROOT / "docker" / "python-base.sh"), BASE_IMAGE],
        env={**builder_env(), "IMAGE_BUILDER": builder},
        check=True,
    )


@dataclass(frozen=True)
class Build:
    image: str
    seconds: float


def make_image(dockerfile: str, builder: str, flags: list[str], log: Path) -> Build:
    """``make images`` for one Dockerfile, timed; its output goes to ``log``."""
    start = time.monotonic()
    with log.open("wb") as out:
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "images",
                f"IMAGES={dockerfile}",
                f"IMAGE_BUILDER={builder}",
                f"IMAGE_REGISTRY={REGISTRY}",
                f"IMAGE_TAG={TAG}",
                f"PYTHON_IMAGE={BASE_IMAGE}",
                f"IMAGE_BUILD_FLAGS={' '.join(flags)}",
            ],
            cwd=REPO_ROOT,
            env=builder_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"make images {dockerfile} failed:\n{log.read_text()[-4000:]}")
    return Build(image_name(dockerfile), time.monotonic() - start)
