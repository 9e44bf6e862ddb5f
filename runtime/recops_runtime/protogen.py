"""Regenerates the checked-in gRPC stubs from the .proto files.

The proto path is rooted at ``proto/``, so the file is registered under its package path,
``recops/v1/recommender.proto``, the name clients that resolve imports by path (reflection,
grpc-js, buf) expect. protoc derives the Python module names from that same path
(``recops.v1...``), so the generated imports are rewritten to where the stubs live,
``recops_runtime.proto.recops.v1...``, and the package works wherever it is installed. A
test regenerates them into a temporary folder and compares, so the checked-in files never
drift from the .proto.

    python -m recops_runtime.protogen          # rewrite the stubs in place
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_ROOT.parent
PROTO_ROOT = PACKAGE_ROOT / "proto"
# Relative to PROTO_ROOT: the names the descriptors are registered under.
PROTO_FILES = ("recops/v1/recommender.proto",)
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# Where the stubs live, relative to the source root, as a path and as a module prefix.
STUBS = PROTO_ROOT.relative_to(SOURCE_ROOT)
STUBS_MODULE = ".".join(STUBS.parts)


def generated_files() -> list[str]:
    """Paths, relative to the source root, of every generated file."""
    return [
        str(STUBS / (proto.removesuffix(".proto") + suffix))
        for proto in PROTO_FILES
        for suffix in GENERATED_SUFFIXES
    ]


def _module(proto: str) -> str:
    """The module protoc names after a proto path: ``recops.v1.recommender_pb2``."""
    return proto.removesuffix(".proto").replace("/", ".") + "_pb2"


def _rewrite_imports(text: str) -> str:
    """Points protoc's module names (derived from the proto path) at the stubs' package."""
    for proto in PROTO_FILES:
        module = _module(proto)
        package, _, name = module.rpartition(".")
        text = text.replace(f"'{module}'", f"'{STUBS_MODULE}.{module}'")
        text = text.replace(
            f"from {package} import {name} ", f"from {STUBS_MODULE}.{package} import {name} "
        )
    return text


def generate(out_root: Path) -> list[Path]:
    """Writes the stubs under ``out_root`` (mirroring the source tree); returns their paths."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # build-time only

    stubs_root = out_root / STUBS
    stubs_root.mkdir(parents=True, exist_ok=True)
    for proto in PROTO_FILES:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={stubs_root}",
            f"--pyi_out={stubs_root}",
            f"--grpc_python_out={stubs_root}",
            str(PROTO_ROOT / proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
    paths = [out_root / rel for rel in generated_files()]
    for path in paths:
        path.write_text(_rewrite_imports(path.read_text()))
    return paths


def stale_files() -> list[str]:
    """Generated files whose checked-in copy differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            rel
            for rel in generated_files()
            if not (SOURCE_ROOT / rel).is_file()
            or (SOURCE_ROOT / rel).read_bytes() != (Path(tmp) / rel).read_bytes()
        ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            rel = path.relative_to(tmp)
            shutil.copyfile(path, SOURCE_ROOT / rel)
            sys.stdout.write(f"wrote {rel}\n")


if __name__ == "__main__":
    main()
