"""In CI a skip is a failure, whether it happens while a test runs or while a module is
collected (a module-level ``pytest.importorskip`` skips the whole file at collection).

A pytest plugin: ``tests/conftest.py`` loads it, and a test loads it with ``-p`` into a
separate pytest run to prove that a skipping module fails there.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from recops_testkit.prerequisites import in_ci

_WHY = "skipped in CI, which must run every test"


def _reason(longrepr: object) -> object:
    return longrepr[2] if isinstance(longrepr, tuple) else longrepr


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A module that skips at collection becomes a collection error, so the run fails."""
    report = yield
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{_WHY} (at collection of {collector.nodeid}): {_reason(report.longrepr)}"
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that skips while it runs (a skipping fixture included) fails."""
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{_WHY}: {_reason(report.longrepr)}"
    return report
