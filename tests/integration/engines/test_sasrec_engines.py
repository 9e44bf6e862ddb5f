"""SASRec (SSE-PT without user embeddings) compiles to the same engines as SSE-PT."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_runtime.engines import BuildOptions, build_engine

FAST = BuildOptions(threads=1, latency_batches=(1,), latency_budget_s=0.0)


@pytest.mark.parametrize(
    "target", ["cpu-onnxruntime", "cpu-openvino", "cpu-onnxruntime-int8", "edge-int8"]
)
def test_a_sasrec_model_compiles_and_keeps_parity(
    target: str, sasrec_bundle: Path, tmp_path: Path
) -> None:
    manifest = build_engine(sasrec_bundle, target, tmp_path / target, FAST)
    assert manifest.parity is not None and manifest.parity.users == 300
