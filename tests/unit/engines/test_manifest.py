"""Manifest writing and verification: every file's sha256, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recops_contracts.engine_manifest import EngineManifest, InputSpec
from recops_runtime.engines.errors import CorruptEngineError, UnknownTargetError
from recops_runtime.engines.manifest import (
    file_digests,
    sha256_file,
    verify_engine_dir,
    write_manifest,
)


def _engine(folder: Path, target: str = "cpu-onnxruntime", items: int = 3) -> EngineManifest:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(b"graph bytes")
    (folder / "id_maps.json").write_text(
        json.dumps({"users": ["u1"], "items": [f"i{i}" for i in range(items)]})
    )
    manifest = EngineManifest(
        target=target,
        precision="fp32",
        input_spec=InputSpec(maxlen=4, num_items=3, num_users=1),
        model_version="7",
        model_sha256="0" * 64,
        artifact="model.onnx",
        files=file_digests(folder),
    )
    write_manifest(folder, manifest)
    return manifest


def test_a_written_manifest_verifies(tmp_path: Path) -> None:
    written = _engine(tmp_path / "e")
    assert verify_engine_dir(tmp_path / "e") == written
    assert written.files["model.onnx"] == sha256_file(tmp_path / "e" / "model.onnx")
    assert "manifest.json" not in written.files


def test_a_changed_file_is_named(tmp_path: Path) -> None:
    _engine(tmp_path / "e")
    (tmp_path / "e" / "model.onnx").write_bytes(b"graph bytez")
    with pytest.raises(CorruptEngineError, match=r"model\.onnx is corrupt"):
        verify_engine_dir(tmp_path / "e")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    _engine(tmp_path / "e")
    (tmp_path / "e" / "id_maps.json").unlink()
    with pytest.raises(CorruptEngineError, match=r"id_maps\.json is missing"):
        verify_engine_dir(tmp_path / "e")


def test_a_folder_without_manifest_is_not_an_engine(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    with pytest.raises(CorruptEngineError, match=r"no manifest\.json.*recops compile"):
        verify_engine_dir(tmp_path / "e")
    with pytest.raises(CorruptEngineError, match="does not exist"):
        verify_engine_dir(tmp_path / "absent")


def test_an_unparseable_manifest_names_the_field(tmp_path: Path) -> None:
    _engine(tmp_path / "e")
    data = json.loads((tmp_path / "e" / "manifest.json").read_text())
    del data["artifact"]
    (tmp_path / "e" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(CorruptEngineError, match="artifact"):
        verify_engine_dir(tmp_path / "e")


def test_an_unknown_target_in_the_manifest_is_refused(tmp_path: Path) -> None:
    _engine(tmp_path / "e", target="cpu-tflite")
    with pytest.raises(UnknownTargetError, match="cpu-tflite"):
        verify_engine_dir(tmp_path / "e")


def test_id_maps_of_another_model_are_refused(tmp_path: Path) -> None:
    _engine(tmp_path / "e", items=5)
    with pytest.raises(CorruptEngineError, match="maps 5 items but the engine scores 3"):
        verify_engine_dir(tmp_path / "e")


def test_a_manifest_cannot_point_outside_its_folder(tmp_path: Path) -> None:
    manifest = _engine(tmp_path / "e")
    (tmp_path / "secret").write_text("x")
    files = {**manifest.files, "../secret": sha256_file(tmp_path / "secret")}
    write_manifest(tmp_path / "e", manifest.model_copy(update={"files": files}))
    with pytest.raises(CorruptEngineError, match="outside the folder"):
        verify_engine_dir(tmp_path / "e")
