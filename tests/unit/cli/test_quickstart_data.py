"""Where the quickstart's data comes from: an unreachable GroupLens falls back to synthetic
data, and the run says so, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_cli.quickstart.data import NOT_FOUND, announcement, choose_data
from recops_cli.quickstart.facts import Facts
from recops_cli.quickstart.processes import free_port
from recops_cli.quickstart.report import write_report
from recops_contracts.training import DatasetFormat
from recops_trainer.data import datasets


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty download cache, and GroupLens' archive at a loopback port nothing serves."""
    monkeypatch.setenv("RECOPS_DATA_DIR", str(tmp_path / "cache"))
    real = datasets.ARCHIVES[DatasetFormat.MOVIELENS_100K]
    url = f"http://127.0.0.1:{free_port()}/ml-100k.zip"
    monkeypatch.setitem(
        datasets.ARCHIVES,
        DatasetFormat.MOVIELENS_100K,
        datasets.Archive(url, real.member, real.algorithm, real.digest),
    )
    return url


def test_a_failed_download_runs_on_synthetic_data_and_says_why(
    tmp_path: Path, offline: str
) -> None:
    choice = choose_data(None, tmp_path / "qs", allow_download=True)
    assert choice.synthetic and choice.path.is_file()
    assert choice.why_synthetic.startswith("the MovieLens-100K download failed: ")
    assert f"cannot download {offline}" in choice.why_synthetic
    line = announcement(choice)
    assert line.startswith("[bold yellow]The MovieLens-100K download failed: ")
    assert "runs on SYNTHETIC interactions.[/bold yellow]" in line

    facts = Facts(data=choice.description, synthetic=True, synthetic_reason=choice.why_synthetic)
    summary = write_report(facts, tmp_path / "report").read_text()
    assert f"**Data: SYNTHETIC interactions** ({choice.why_synthetic})." in summary


def test_without_download_it_says_nothing_was_found(tmp_path: Path, offline: str) -> None:
    choice = choose_data(None, tmp_path / "qs", allow_download=False)
    assert choice.synthetic and choice.why_synthetic == NOT_FOUND
    assert announcement(choice).startswith(
        "[bold yellow]No MovieLens-100K was found: the quickstart runs on SYNTHETIC"
    )
