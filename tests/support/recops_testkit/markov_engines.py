"""Engine folders whose quality is known, for canaries on real traffic.

Each engine is a first-order Markov recommender in ONNX: the scores are the row of an
item-to-next-item count matrix for the last history item, plus a small popularity term.
Fitted on more users it recommends better, so "fitted on 1% of users" is an honestly
under-trained model of the same kind; an engine whose matrix lacks the rows of rare items
fails (an out-of-range Gather) on the requests that end with one, as a model with a
too-small embedding table would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recops_contracts.engine_manifest import EngineManifest, InputSpec
from recops_runtime.tools.sequences import UserSequence

MAXLEN = 20


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Vocabulary:
    items: list[str]  # original ids, internal id i + 1, by descending training popularity
    users: list[str]
    popularity: np.ndarray

    @classmethod
    def of(cls, sequences: list[UserSequence]) -> Vocabulary:
        counts: dict[str, int] = {}
        for s in sequences:
            for item in s.items:
                counts[item] = counts.get(item, 0) + 1
        items = sorted(counts, key=lambda i: (-counts[i], i))
        pop = np.zeros(len(items) + 1, dtype=np.float32)
        for i, item in enumerate(items):
            pop[i + 1] = counts[item]
        return cls(items, [s.user_id for s in sequences], pop / pop.max())


def transition_counts(
    sequences: list[UserSequence], vocab: Vocabulary, fraction: float, seed: int = 0
) -> np.ndarray:
    """Next-item counts from the training part (all but the held-out last item) of a share
    of the users."""
    index = {item: i + 1 for i, item in enumerate(vocab.items)}
    n = len(vocab.items) + 1
    matrix = np.zeros((n, n), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for s in sequences:
        if rng.random() >= fraction:
            continue
        ids = [index[i] for i in s.items[:-1]]
        np.add.at(matrix, (ids[:-1], ids[1:]), 1.0)
    return matrix


def build_markov_engine(
    out: Path,
    sequences: list[UserSequence],
    vocab: Vocabulary,
    *,
    fraction: float,
    model_version: str,
    rows: int | None = None,
) -> Path:
    """Write an engine folder; ``rows`` truncates the matrix (requests past it fail)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    matrix = transition_counts(sequences, vocab, fraction)
    if rows is not None:
        matrix = matrix[:rows]
    n = len(vocab.items) + 1
    nodes = [
        helper.make_node("Gather", ["history", "last_pos"], ["last"], axis=1),
        helper.make_node("Gather", ["next_counts", "last"], ["rows"], axis=0),
        helper.make_node("Add", ["rows", "popularity"], ["with_pop"]),
        # user_ids is part of the engine contract; this model ignores it (times zero).
        helper.make_node("Cast", ["user_ids"], ["user_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["user_f", "zero"], ["user_zero"]),
        helper.make_node("Unsqueeze", ["user_zero", "axis1"], ["user_col"]),
        helper.make_node("Add", ["with_pop", "user_col"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "markov_recommender",
        [
            helper.make_tensor_value_info("user_ids", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("history", TensorProto.INT64, ["batch", MAXLEN]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n])],
        initializer=[
            numpy_helper.from_array(matrix, "next_counts"),
            numpy_helper.from_array((0.01 * vocab.popularity).astype(np.float32), "popularity"),
            numpy_helper.from_array(np.array(MAXLEN - 1, dtype=np.int64), "last_pos"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    id_maps = {
        "users": vocab.users,
        "items": vocab.items,
        "popular_items": list(range(1, min(len(vocab.items), 1000) + 1)),
    }
    (out / "id_maps.json").write_text(json.dumps(id_maps))
    manifest = EngineManifest(
        target="cpu-onnxruntime",
        precision="fp32",
        opset=18,
        input_spec=InputSpec(maxlen=MAXLEN, num_items=len(vocab.items), num_users=len(vocab.users)),
        model_version=model_version,
        model_sha256=_sha256(out / "model.onnx"),
        artifact="model.onnx",
        files={name: _sha256(out / name) for name in ("model.onnx", "id_maps.json")},
    )
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return out
