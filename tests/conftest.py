"""Fixtures shared by every tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recops_testkit.prerequisites import crd_schemas_dir, in_ci, report, shared_data_dir
from recops_testkit.schemas import load_crd

REPO_ROOT = Path(__file__).resolve().parents[1]

# Skips at collection and while running fail in CI (see the plugin).
pytest_plugins = ["recops_testkit.ci_skips"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI a missing prerequisite fails the run before any test, naming it."""
    if in_ci() and (text := report()):
        pytest.exit(f"CI: {text}", returncode=4)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set RECOPS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_crd_schemas() -> Path:
    path = crd_schemas_dir()
    if not path.is_dir():
        pytest.skip(f"upstream CRD schemas not found at {path} (set RECOPS_CRD_SCHEMAS)")
    return path


# --- CustomResourceDefinitions ----------------------------------------------------------
#
# Objects are validated with `recops_testkit.schemas`: one contract,
# `validate_object` / `object_errors`, for our CRDs, the upstream ones and core kinds alike.


@pytest.fixture(scope="session")
def our_crds() -> dict[str, dict[str, Any]]:
    """Kind -> the CRD this project ships in crds/."""
    crds = [load_crd(p) for p in sorted((REPO_ROOT / "crds").glob("*.yaml"))]
    return {c["spec"]["names"]["kind"]: c for c in crds}


@pytest.fixture(scope="session")
def upstream_crds(shared_crd_schemas: Path) -> dict[str, dict[str, Any]]:
    """Kind -> upstream CRD (RayJob, RayCluster, GRPCRoute, HTTPRoute, ServiceMonitor, ...)."""
    crds = [load_crd(p) for p in sorted(shared_crd_schemas.glob("*.yaml"))]
    return {c["spec"]["names"]["kind"]: c for c in crds}
