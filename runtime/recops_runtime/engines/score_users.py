"""Score an export bundle's evaluation users with an engine, for parity checks elsewhere.

An engine's parity is measured where it is built; this runs the scoring half on another
processor (a serving node, or an emulated one: ``qemu-x86_64 -cpu EPYC-Rome python -m
...``), and ``compare`` on the build host checks the scores against the reference.

    python -m recops_runtime.engines.score_users ENGINE_DIR BUNDLE_DIR USERS OUT.npy

Writes the scores of the bundle's first USERS evaluation users (histories cut to the
engine's length) and prints the processor the engine ran on, as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from recops_contracts.engine_manifest import ParityResult
from recops_runtime.engines.base import FloatArray
from recops_runtime.engines.bundle import ExportBundle
from recops_runtime.engines.cpu import host_cpu
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.load import load_engine
from recops_runtime.engines.manifest import read_manifest
from recops_runtime.engines.parity import ScoreFn, compare, score_all


def engine_view(users: UserSequences, maxlen: int) -> UserSequences:
    """The users as an engine of history length ``maxlen`` sees them."""
    return users.truncated(maxlen) if maxlen < users.maxlen else users


def reference_view(users: UserSequences, maxlen: int) -> UserSequences:
    """What that engine sees, left-padded to the reference's full length."""
    return engine_view(users, maxlen).left_padded(users.maxlen)


def parity_of(
    scores: FloatArray, engine_dir: Path, bundle: ExportBundle, users: int, reference: ScoreFn
) -> ParityResult:
    """Parity with the reference of ``scores`` that this module wrote for ``engine_dir``."""
    maxlen = read_manifest(engine_dir).input_spec.maxlen
    view = reference_view(bundle.evaluation().head(users), maxlen)
    return compare(score_all(reference, view), scores, view)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", type=Path)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("users", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    engine = load_engine(args.engine, threads=1)
    users = ExportBundle(args.bundle).evaluation().head(args.users)
    shown = engine_view(users, engine.manifest.input_spec.maxlen)
    np.save(args.out, score_all(engine.score, shown))
    engine.close()
    print(json.dumps(host_cpu().model_dump()))


if __name__ == "__main__":
    main()
