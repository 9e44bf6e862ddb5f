"""Which products the int8 builds quantize, read from a graph built by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from recops_runtime.engines.errors import EngineError
from recops_runtime.engines.onnx_build import int8_matmuls


def _graph(blocks: int, path: Path) -> Path:
    """``blocks`` x (projection, attention-like product, feed-forward in, Relu, out)."""
    nodes, inits = [], []
    x = "x"
    for b in range(blocks):
        for w in (f"wq{b}", f"w1_{b}", f"w2_{b}"):
            inits.append(numpy_helper.from_array(np.eye(4, dtype=np.float32), w))
        inits.append(numpy_helper.from_array(np.zeros(4, np.float32), f"b1_{b}"))
        nodes += [
            helper.make_node("MatMul", [x, f"wq{b}"], [f"q{b}"], name=f"proj{b}"),
            helper.make_node("MatMul", [f"q{b}", x], [f"att{b}"], name=f"scores{b}"),
            helper.make_node("MatMul", [f"att{b}", f"w1_{b}"], [f"h{b}"], name=f"ffn_in{b}"),
            helper.make_node("Add", [f"h{b}", f"b1_{b}"], [f"hb{b}"]),
            helper.make_node("Relu", [f"hb{b}"], [f"r{b}"]),
            helper.make_node("MatMul", [f"r{b}", f"w2_{b}"], [f"y{b}"], name=f"ffn_out{b}"),
        ]
        x = f"y{b}"
    graph = helper.make_graph(
        nodes,
        "blocks",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [4, 4])],
        inits,
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_the_feed_forward_layers_of_all_blocks_but_the_last(tmp_path: Path) -> None:
    matmuls = int8_matmuls(_graph(3, tmp_path / "three.onnx"))
    assert matmuls.quantized == ["ffn_in0", "ffn_out0", "ffn_in1", "ffn_out1"]
    assert len(matmuls.every) == 12  # projections, attention products, the last block: fp32


def test_a_one_block_model_is_refused_naming_the_fp32_targets(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"one-block model .* \(cpu-onnxruntime, cpu-openvino\)"):
        int8_matmuls(_graph(1, tmp_path / "one.onnx"))
