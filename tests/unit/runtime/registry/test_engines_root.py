"""engineDir is confined to the engines root, and refusals reveal nothing of the disk.

Before, any absolute path was accepted: the answers told whether a directory existed, and
a manifest validation error quoted the content of whatever ``manifest.json`` it read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.manifest import read_manifest
from recops_runtime.registry.version_registry import (
    OUTSIDE_ROOTS,
    VersionRegistry,
    confine_engine_dir,
)

SECRET = "hunter2-do-not-echo"


def refusal(engine_dir: Path, roots: tuple[Path, ...]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        confine_engine_dir(engine_dir, roots)
    return caught.value


def test_paths_outside_the_root_get_one_answer_whether_or_not_they_exist(tmp_path: Path) -> None:
    root = tmp_path / "engines"
    (root / "v1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    answers = {
        str(path): refusal(path, (root,))
        for path in (
            tmp_path / "elsewhere",  # exists
            tmp_path / "nowhere",  # does not
            root / ".." / "elsewhere",  # '..' out of the root
            root / "escape",  # a symlink out of the root
            Path("/etc"),
        )
    }
    assert {(e.status, e.message) for e in answers.values()} == {
        (Status.INVALID_ARGUMENT, OUTSIDE_ROOTS)
    }
    assert confine_engine_dir(root / "v1", (root,)) == (root / "v1").resolve()
    assert confine_engine_dir(root / "new", (root,)) == (root / "new").resolve()
    assert confine_engine_dir(Path("/etc"), ()) == Path("/etc")  # no roots: not confined


async def test_the_registry_refuses_before_looking_at_the_folder(tmp_path: Path) -> None:
    registry = VersionRegistry(
        loader=lambda folder, threads: pytest.fail("never loaded"),
        engines_roots=(tmp_path / "engines",),
    )
    for path in (tmp_path, tmp_path / "missing"):
        with pytest.raises(ServiceError) as caught:
            await registry.load_version("v2", path)
        assert caught.value.message == OUTSIDE_ROOTS


def test_a_bad_manifest_names_its_fields_not_their_content(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"target": SECRET, "files": [SECRET]}))
    with pytest.raises(CorruptEngineError) as caught:
        read_manifest(tmp_path)
    assert SECRET not in str(caught.value)
    assert "files" in str(caught.value)
    (tmp_path / "manifest.json").write_text(f"{SECRET}\nroot:x:0:0")  # not JSON at all
    with pytest.raises(CorruptEngineError) as caught:
        read_manifest(tmp_path)
    assert SECRET not in str(caught.value)
