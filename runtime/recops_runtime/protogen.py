"""Regenerates the checked-in gRPC stubs from the .proto files.

The stubs are generated with the proto path rooted at the ``runtime/`` source folder, so
the generated modules import each other as ``recops_runtime.proto.recops.v1...`` and the
package works wherever it is installed. A test regenerates them into a temporary folder
and compares, so the checked-in files never drift from the .proto.

    python -m recops_runtime.protogen          # rewrite the stubs in place
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_ROOT.parent
PROTO_FILES = ("recops_runtime/proto/recops/v1/recommender.proto",)
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generated_files() -> list[str]:
    """Paths, relative to the source root, of every generated file."""
    return [
        proto.removesuffix(".proto") + suffix
        for proto in PROTO_FILES
        for suffix in GENERATED_SUFFIXES
    ]


def generate(out_root: Path) -> list[Path]:
    """Writes the stubs under ``out_root`` (mirroring the source tree); returns their paths."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # build-time only

    out_root.mkdir(parents=True, exist_ok=True)
    for proto in PROTO_FILES:
        args = [
            "grpc_tools.protoc",
            f"-I{SOURCE_ROOT}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(SOURCE_ROOT / proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
    return [out_root / rel for rel in generated_files()]


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
