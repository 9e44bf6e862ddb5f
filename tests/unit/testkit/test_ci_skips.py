"""CI cannot pass by skipping: a module that skips at collection (a module-level
``pytest.importorskip``) fails the run in CI as a test that skips while running does.

Each case runs a separate pytest on a tiny module with the suite's plugin loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
SUPPORT = Path(__file__).resolve().parents[2] / "support"

COLLECTION_SKIP = """
import pytest
pytest.importorskip("a_module_that_is_not_installed")

def test_never_runs():
    assert True
"""

RUNTIME_SKIP = """
import pytest

def test_skips_while_running():
    pytest.skip("no tool here")
"""

PASSING = """
def test_passes():
    assert True
"""


def run_pytest(tmp_path: Path, source: str, *, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), env.get("PYTHONPATH", "")])
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "recops_testkit.ci_skips",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "-rA",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("source", [COLLECTION_SKIP, RUNTIME_SKIP], ids=["collection", "runtime"])
def test_a_skip_fails_the_run_in_ci(tmp_path: Path, source: str) -> None:
    result = run_pytest(tmp_path, source, ci=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "skipped in CI, which must run every test" in output, output
    assert " skipped" not in result.stdout.strip().splitlines()[-1], output


@pytest.mark.parametrize("source", [COLLECTION_SKIP, RUNTIME_SKIP], ids=["collection", "runtime"])
def test_a_skip_outside_ci_stays_a_skip(tmp_path: Path, source: str) -> None:
    result = run_pytest(tmp_path, source, ci=False)
    output = result.stdout + result.stderr
    # A module skipped whole collects nothing, which pytest reports with its own code.
    assert result.returncode in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), output
    assert "1 skipped" in result.stdout.strip().splitlines()[-1], output


def test_a_passing_module_passes_in_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, PASSING, ci=True)
    assert result.returncode == 0, result.stdout + result.stderr
