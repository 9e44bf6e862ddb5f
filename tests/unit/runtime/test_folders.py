"""Publishing a folder written beside its destination."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_runtime.folders import replace_folder, staged_folder


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "file.txt").write_text(text)
    return path


def test_a_new_folder_is_renamed_into_place(tmp_path: Path) -> None:
    staging = _folder(tmp_path / ".out.staging", "new")
    replace_folder(staging, tmp_path / "out")
    assert (tmp_path / "out" / "file.txt").read_text() == "new"
    assert not staging.exists()


def test_an_existing_folder_is_replaced_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    _folder(tmp_path / "out", "old")
    replace_folder(_folder(tmp_path / ".out.staging", "new"), tmp_path / "out")
    assert (tmp_path / "out" / "file.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_staged_folder_is_published_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out"
    with staged_folder(target, "writing") as staging:
        (staging / "file.txt").write_text("new")
        assert not target.exists()  # nothing is visible until the block ends
    assert (target / "file.txt").read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o755  # shared: readable by other pods
    with pytest.raises(OSError, match="disk full"), staged_folder(target, "writing") as staging:
        (staging / "file.txt").write_text("half")
        raise OSError("disk full")
    assert (target / "file.txt").read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out"]
