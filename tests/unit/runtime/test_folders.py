"""Publishing a folder written beside its destination."""

from __future__ import annotations

from pathlib import Path

from recops_runtime.folders import replace_folder


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
