"""The target registry agrees with the operator's API, and the package imports no toolkit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recops_operator.api.targets import TargetName
from recops_runtime.engines import TARGETS, UnknownTargetError, get_target


def test_registry_names_equal_the_operator_target_names() -> None:
    assert list(TARGETS) == [t.value for t in TargetName]
    for name in TargetName:
        assert get_target(name.value).needs_gpu == name.needs_gpu


def test_an_unknown_target_lists_the_valid_names() -> None:
    with pytest.raises(UnknownTargetError) as caught:
        get_target("cpu-tflite")
    message = str(caught.value)
    assert "'cpu-tflite'" in message
    assert all(name in message for name in TARGETS)


def test_int8_targets_gate_looser_than_fp32() -> None:
    for spec in TARGETS.values():
        expected = {"fp32": 0.99, "fp16": 0.97, "int8": 0.95}[spec.precision]
        assert spec.parity.min_top10_overlap == expected


def test_importing_the_engines_imports_no_engine_toolkit() -> None:
    code = (
        "import sys, recops_runtime.engines, recops_runtime.engines.build;"
        "heavy = {'torch', 'openvino', 'nncf', 'onnxruntime', 'onnx', 'tensorrt'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
