"""Writing and verifying an engine folder's manifest: a sha256 for every file.

A loader calls :func:`verify_engine_dir` before it opens any artifact, so a truncated
download, a swapped file or a manifest from another build is refused with a message
that names the file, instead of serving wrong scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from recops_contracts.engine_manifest import ID_MAPS_FILE, MANIFEST_FILE, EngineManifest
from recops_contracts.wire import describe_errors
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.targets import get_target

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, by relative POSIX path."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def write_manifest(folder: Path, manifest: EngineManifest) -> Path:
    path = folder / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> EngineManifest:
    """The manifest of ``folder``, parsed and typed, without checking the files."""
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise CorruptEngineError(f"engine folder {folder} does not exist")
    if not path.is_file():
        raise CorruptEngineError(
            f"{folder} has no {MANIFEST_FILE}: it is not an engine folder, or its build did "
            "not finish; rebuild it with `recops compile`"
        )
    try:
        return EngineManifest.model_validate_json(path.read_bytes())
    except ValidationError as error:
        # Fields and what is wrong with them, never their values: the admin API returns
        # this message, and the file need not be a manifest at all.
        raise CorruptEngineError(
            f"{path} is not a valid engine manifest: {describe_errors(error)}"
        ) from error


def verify_engine_dir(folder: Path, expected_target: str | None = None) -> EngineManifest:
    """Check the manifest, the target and every file's sha256; return the manifest."""
    manifest = read_manifest(folder)
    get_target(manifest.target)
    if expected_target is not None and manifest.target != expected_target:
        raise CorruptEngineError(
            f"{folder} holds a {manifest.target} engine, not the {expected_target} engine "
            "that was asked for"
        )
    for required in (manifest.artifact, manifest.id_maps):
        if required not in manifest.files:
            raise CorruptEngineError(f"{folder}/{MANIFEST_FILE} lists no checksum for {required}")
    for relative, expected in manifest.files.items():
        path = folder / relative
        if not path.resolve().is_relative_to(folder.resolve()):
            raise CorruptEngineError(f"{folder}/{MANIFEST_FILE} points outside the folder")
        if not path.is_file():
            raise CorruptEngineError(f"{path} is missing (listed in the manifest)")
        actual = sha256_file(path)
        if actual != expected:
            raise CorruptEngineError(
                f"{path} is corrupt: sha256 {actual[:12]}... differs from the manifest's "
                f"{expected[:12]}...; copy the engine folder again or rebuild it"
            )
    _check_id_maps(folder / manifest.id_maps, manifest)
    return manifest


def _check_id_maps(path: Path, manifest: EngineManifest) -> None:
    try:
        maps = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CorruptEngineError(f"{path} is not readable JSON: {error}") from error
    items = maps.get("items") if isinstance(maps, dict) else None
    if not isinstance(items, list):
        raise CorruptEngineError(f"{path} has no 'items' list")
    if len(items) != manifest.input_spec.num_items:
        raise CorruptEngineError(
            f"{path} maps {len(items)} items but the engine scores "
            f"{manifest.input_spec.num_items}: the id maps belong to another model"
        )


__all__ = [
    "ID_MAPS_FILE",
    "file_digests",
    "read_manifest",
    "sha256_file",
    "verify_engine_dir",
    "write_manifest",
]
