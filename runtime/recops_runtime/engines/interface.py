"""The graph interface every artifact must expose, checked against its manifest on load."""

from __future__ import annotations

from pathlib import Path

from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.engines.base import INPUT_HISTORY, INPUT_USER_IDS, OUTPUT_SCORES
from recops_runtime.engines.errors import CorruptEngineError

# A dimension as runtimes report it: an int when static, a name or None when dynamic.
Dim = int | str | None


def _fixed(dim: Dim) -> int | None:
    return dim if isinstance(dim, int) and dim >= 0 else None


def check_interface(
    artifact: Path,
    manifest: EngineManifest,
    inputs: dict[str, list[Dim]],
    outputs: dict[str, list[Dim]],
) -> None:
    """Refuse a graph whose inputs or outputs disagree with the manifest's input spec."""
    spec = manifest.input_spec
    problems = []
    if set(inputs) != {INPUT_USER_IDS, INPUT_HISTORY}:
        problems.append(f"inputs {sorted(inputs)} instead of {[INPUT_HISTORY, INPUT_USER_IDS]}")
    else:
        history = inputs[INPUT_HISTORY]
        if len(history) != 2 or _fixed(history[1]) not in (spec.maxlen, None):
            problems.append(f"history shape {history}, manifest maxlen {spec.maxlen}")
    scores = outputs.get(OUTPUT_SCORES)
    if scores is None:
        problems.append(f"outputs {sorted(outputs)} lack {OUTPUT_SCORES!r}")
    elif len(scores) != 2 or _fixed(scores[1]) not in (spec.num_items + 1, None):
        problems.append(f"scores shape {scores}, manifest num_items + 1 = {spec.num_items + 1}")
    if problems:
        raise CorruptEngineError(
            f"{artifact} does not match its manifest ({'; '.join(problems)}): "
            "the artifact belongs to another model; rebuild the engine"
        )
