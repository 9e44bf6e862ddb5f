"""What the test suite needs from outside the project, checked before anything runs.

The suite reads real MovieLens files and the upstream CRD schemas from a folder beside
the project (``../shared``, or ``RECOPS_SHARED_DATA`` / ``RECOPS_CRD_SCHEMAS``), and starts
programs that come from Debian packages (``make deb-deps``) or the machine. Outside CI a
missing one skips the tests that need it; in CI (``CI`` set, as ``.ci/run`` and GitHub
Actions do) it fails the run at once, naming what is missing and how to get it, so that
CI cannot pass by skipping.

Standard library only: ``make test`` runs it before the virtual environment exists.

    python3 tests/support/recops_testkit/prerequisites.py check [--files]
        # exit 1 in CI when something is missing (--files: data and schemas only)
    python3 tests/support/recops_testkit/prerequisites.py fetch FOLDER
        # download data and schemas, verified
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import shutil
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def shared_data_dir() -> Path:
    """The reference MovieLens files beside the project (never copied into it)."""
    return Path(os.environ.get("RECOPS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def crd_schemas_dir() -> Path:
    return Path(os.environ.get("RECOPS_CRD_SCHEMAS", REPO_ROOT.parent / "shared" / "crd-schemas"))


@dataclass(frozen=True)
class DataFile:
    """A reference file: where it lies under its folder, and how to get it."""

    path: str
    source: str
    # sha256 of the bytes as the tests read them, or, for gzipped files, of the content.
    sha256: str


DATA_FILES = (
    DataFile(
        "ml-1m/ml-1m.txt.gz",
        "https://raw.githubusercontent.com/kang205/SASRec/master/data/ml-1m.txt",
        "",  # checked by its git blob id instead (below): the repository's own identity
    ),
    DataFile(
        "ml-100k/u.data.gz",
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    ),
)
ML1M_GIT_BLOB = "9ab8e3edb8742f8d8cc4911e3dee25e82a6fcc24"

_KUBERAY = "https://github.com/ray-project/kuberay/raw/feeaf72f/ray-operator/config/crd/bases"
_GATEWAY = "https://github.com/kubernetes-sigs/gateway-api/raw/4564255a/config/crd/standard"
_PROMOP = (
    "https://github.com/prometheus-operator/prometheus-operator/raw/6adcebc5"
    "/example/prometheus-operator-crd"
)
CRD_SCHEMAS = {
    "ray.io_rayjobs.yaml": (
        _KUBERAY,
        "01a5cf3b17c1769fda44af7e82debcd98722f0c27b9ab84d084681c6649121f5",
    ),
    "ray.io_rayclusters.yaml": (
        _KUBERAY,
        "c44704442eef0c6721ad40c1d66782c8bd3fdab9d3344306a5820910a679baa1",
    ),
    "gateway.networking.k8s.io_grpcroutes.yaml": (
        _GATEWAY,
        "7c9663161de4131ececfe60a652dae3dacd373bc024f1ac2eb22c1ee8d34f657",
    ),
    "gateway.networking.k8s.io_httproutes.yaml": (
        _GATEWAY,
        "5b746e5dd696239cdf7d1a6dc6293d103fb78056598aa3f2e14f7512dc8c362b",
    ),
    "monitoring.coreos.com_servicemonitors.yaml": (
        _PROMOP,
        "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32",
    ),
    "monitoring.coreos.com_podmonitors.yaml": (
        _PROMOP,
        "45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d",
    ),
    "monitoring.coreos.com_prometheusrules.yaml": (
        _PROMOP,
        "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d",
    ),
}

# Programs the tests start, and where they come from.
PROGRAMS = {
    "prometheus": "Debian's prometheus package (make deb-deps)",
    "promtool": "Debian's prometheus package (make deb-deps)",
    "redis-server": "Debian's redis-server package (make deb-deps)",
    "terraform": "HashiCorp's terraform (https://developer.hashicorp.com/terraform/install)",
    "kubectl": "kubectl (https://kubernetes.io/docs/tasks/tools/)",
}
# The int8 engines are also checked on an emulated AVX2-only processor (x86 hosts only).
EMULATOR = ("qemu-x86_64", "Debian's qemu-user package (make deb-deps)")


def missing(programs_too: bool = True) -> list[str]:
    """One line per missing prerequisite, naming it and how to get it.

    ``programs_too=False`` checks the files only (before ``make deb-deps`` has run).
    """
    problems = []
    data = shared_data_dir()
    for item in DATA_FILES:
        if not (data / item.path).is_file():
            problems.append(
                f"reference data {data / item.path} (from {item.source}; set "
                "RECOPS_SHARED_DATA or run "
                "`python3 tests/support/recops_testkit/prerequisites.py fetch FOLDER`)"
            )
    schemas = crd_schemas_dir()
    for name in CRD_SCHEMAS:
        if not (schemas / name).is_file():
            problems.append(
                f"upstream CRD schema {schemas / name} (set RECOPS_CRD_SCHEMAS or run "
                "`python3 tests/support/recops_testkit/prerequisites.py fetch FOLDER`)"
            )
    if not programs_too:
        return problems
    programs = dict(PROGRAMS)
    if platform.machine() in ("x86_64", "AMD64"):
        programs[EMULATOR[0]] = EMULATOR[1]
    for program, origin in programs.items():
        if shutil.which(program) is None:
            problems.append(f"program {program} (from {origin})")
    return problems


def report(programs_too: bool = True) -> str:
    lines = missing(programs_too)
    if not lines:
        return ""
    return "the test suite's prerequisites are missing:\n" + "\n".join(f"  - {x}" for x in lines)


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        body: bytes = response.read()
    return body


def _verify(name: str, content: bytes, sha256: str) -> None:
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{name}: sha256 {digest}, expected {sha256}; nothing was written")


def _write_gzip(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(content)
    path.write_bytes(buffer.getvalue())


def fetch(folder: Path) -> None:
    """Download the reference data into ``folder/data`` and the schemas into
    ``folder/crd-schemas``, each checked against its pinned checksum."""
    data = folder / "data"
    ml1m, ml100k = DATA_FILES
    text = _download(ml1m.source)
    blob = hashlib.sha1(b"blob %d\0" % len(text) + text, usedforsecurity=False).hexdigest()
    if blob != ML1M_GIT_BLOB:
        raise SystemExit(f"ml-1m.txt: git blob {blob}, expected {ML1M_GIT_BLOB}")
    _write_gzip(data / ml1m.path, text)
    with zipfile.ZipFile(io.BytesIO(_download(ml100k.source))) as archive:
        ratings = archive.read("ml-100k/u.data")
    _verify("ml-100k/u.data", ratings, ml100k.sha256)
    _write_gzip(data / ml100k.path, ratings)
    schemas = folder / "crd-schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    for name, (base, sha256) in CRD_SCHEMAS.items():
        content = _download(f"{base}/{name}")
        _verify(name, content, sha256)
        (schemas / name).write_bytes(content)
    print(f"reference data in {data}, CRD schemas in {schemas}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"] and len(argv) == 2:
        fetch(Path(argv[1]))
        return 0
    if argv[:1] != ["check"] or argv[1:] not in ([], ["--files"]):
        print(__doc__, file=sys.stderr)
        return 2
    text = report(programs_too=argv[1:] != ["--files"])
    if not text:
        return 0
    if in_ci():
        print(f"CI: {text}", file=sys.stderr)
        return 1
    print(f"note: {text}\n(the tests that need them will be skipped)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
