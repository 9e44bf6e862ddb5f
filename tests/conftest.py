"""Fixtures shared by every tier."""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

# The harness shared by the tiers and the benchmarks: the prerequisites list, the emulated
# API server, the background operator, free ports, the validation of objects.
sys.path.insert(0, str(Path(__file__).parent / "support"))
from prerequisites import crd_schemas_dir, in_ci, report, shared_data_dir
from schemas import load_crd

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI a missing prerequisite fails the run before any test, naming it."""
    if in_ci() and (text := report()):
        pytest.exit(f"CI: {text}", returncode=4)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """In CI a skipped test is a failure: CI must not pass by running less."""
    outcome = yield
    report_ = outcome.get_result()
    if in_ci() and report_.skipped and not hasattr(report_, "wasxfail"):
        reason = report_.longrepr[2] if isinstance(report_.longrepr, tuple) else report_.longrepr
        report_.outcome = "failed"
        report_.longrepr = f"skipped in CI, which must run every test: {reason}"


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
# Objects are validated with the `schemas` module (tests/support/schemas.py): one contract,
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
