"""Build every CPU target from one export bundle, load it back, and score like the reference."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recops_runtime.engines import (
    BuildOptions,
    CorruptEngineError,
    MissingToolkitError,
    ParityError,
    UnknownTargetError,
    build_engine,
    load_engine,
    score_users,
)
from recops_runtime.engines.bundle import ExportBundle
from recops_runtime.engines.cpu import host_cpu
from recops_runtime.engines.parity import check
from recops_runtime.engines.targets import CPU_TARGETS, ParityThreshold, get_target

FAST = BuildOptions(threads=1, latency_batches=(1, 8), latency_budget_s=0.0)


class BuiltEngines:
    """Each target built on first use, once. A target that fails its build fails the tests
    that use it, with the build's message; the other targets' tests do not notice."""

    def __init__(self, bundle: Path, root: Path) -> None:
        self._bundle = bundle
        self._root = root
        self._built: dict[str, Path | Exception] = {}

    def __getitem__(self, target: str) -> Path:
        if target not in self._built:
            try:
                build_engine(self._bundle, target, self._root / target, FAST)
                self._built[target] = self._root / target
            except Exception as error:  # remembered, so every test of the target says why
                self._built[target] = error
        outcome = self._built[target]
        if isinstance(outcome, Exception):
            pytest.fail(f"{target} did not build: {outcome}", pytrace=False)
        return outcome


@pytest.fixture(scope="module")
def engines(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltEngines:
    return BuiltEngines(tiny_bundle, tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def reference(tiny_bundle: Path) -> Any:
    from recops_runtime.engines.torch_engine import ProgramScorer

    return ProgramScorer(ExportBundle(tiny_bundle).reference(), threads=1)


@pytest.mark.parametrize("target", CPU_TARGETS)
def test_round_trip_scores_like_the_reference(
    target: str, engines: BuiltEngines, tiny_bundle: Path, reference: Any
) -> None:
    engine = load_engine(engines[target], threads=1)
    users = ExportBundle(tiny_bundle).evaluation().head(64)
    history = users.history
    if target == "edge-int8":
        history = history[:, -engine.manifest.input_spec.maxlen :]
    scores = engine.score(users.user_ids, np.ascontiguousarray(history))
    padded = np.zeros_like(users.history)
    padded[:, -history.shape[1] :] = history
    expected = reference(users.user_ids, padded)
    assert scores.shape == expected.shape == (64, engine.manifest.input_spec.num_items + 1)
    if engine.manifest.precision == "fp32":
        np.testing.assert_allclose(scores[:, 1:], expected[:, 1:], atol=1e-4, rtol=1e-4)
    else:
        top = np.argsort(-expected[:, 1:], axis=1)[:, :10]
        top_engine = np.argsort(-scores[:, 1:], axis=1)[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, top_engine, strict=True)])
        assert overlap >= 0.9
    engine.close()


@pytest.mark.parametrize("target", CPU_TARGETS)
def test_manifest_records_what_was_built_and_measured(
    target: str, engines: BuiltEngines, tiny_bundle: Path
) -> None:
    manifest = json.loads((engines[target] / "manifest.json").read_text())
    info = ExportBundle(tiny_bundle).info
    assert manifest["target"] == target
    assert manifest["model_sha256"] == info.model_sha256
    assert manifest["dataset_hash"] == info.dataset_hash
    assert set(manifest["files"]) == {
        p.relative_to(engines[target]).as_posix()
        for p in engines[target].rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    parity = manifest["parity"]
    assert parity["users"] == 300  # every synthetic user with a held-out item
    assert parity["top10_overlap"] >= (0.99 if manifest["precision"] == "fp32" else 0.95)
    assert [entry["batch"] for entry in manifest["latency"]] == [1, 8]
    assert all(entry["p99_ms"] >= entry["p50_ms"] > 0 for entry in manifest["latency"])
    if target == "edge-int8":
        assert manifest["input_spec"]["maxlen"] == parity["reference_maxlen"] == 12
        assert parity["ndcg10_full_history"] is not None
    if manifest["precision"] == "int8":
        assert manifest["build_options"]["calibration_users"] == 128
        assert manifest["build_options"]["weight_bits"] == 7
        # The tiny model has 2 blocks: the first block's two feed-forward layers.
        assert manifest["build_options"]["quantized_matmuls"] == 2
    assert manifest["measured_on"] == host_cpu().model_dump()


def test_a_build_below_its_parity_threshold_leaves_nothing(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    impossible = ParityThreshold(min_top10_overlap=1.0, max_ndcg10_delta=0.0, max_abs_diff=0.0)
    out = tmp_path / "engine"
    options = FAST.model_copy(update={"parity": impossible})
    with pytest.raises(
        ParityError,
        match=r"cpu-onnxruntime-int8 .*fails parity.*max score.*this processor .*int8 kernels\); "
        r"build cpu-onnxruntime instead",
    ):
        build_engine(tiny_bundle, "cpu-onnxruntime-int8", out, options)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_artifact_is_refused(engines: BuiltEngines, tmp_path: Path) -> None:
    copy = tmp_path / "engine"
    shutil.copytree(engines["cpu-onnxruntime"], copy)
    with (copy / "model.onnx").open("r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CorruptEngineError, match=r"model\.onnx is corrupt: sha256"):
        load_engine(copy)


def test_an_artifact_from_another_model_is_refused(engines: BuiltEngines, tmp_path: Path) -> None:
    """A manifest re-signed over a swapped graph still fails the interface check."""
    from recops_runtime.engines.manifest import file_digests, read_manifest, write_manifest

    copy = tmp_path / "engine"
    shutil.copytree(engines["cpu-onnxruntime"], copy)
    manifest = read_manifest(copy)
    spec = manifest.input_spec.model_copy(update={"num_items": manifest.input_spec.num_items + 5})
    maps = json.loads((copy / "id_maps.json").read_text())
    maps["items"] += [f"extra-{i}" for i in range(5)]
    (copy / "id_maps.json").write_text(json.dumps(maps))
    write_manifest(
        copy, manifest.model_copy(update={"input_spec": spec, "files": file_digests(copy)})
    )
    with pytest.raises(CorruptEngineError, match="belongs to another model"):
        load_engine(copy)


def test_wrong_target_names_are_refused(engines: BuiltEngines, tiny_bundle: Path) -> None:
    with pytest.raises(UnknownTargetError, match="choose one of cpu-torch"):
        build_engine(tiny_bundle, "cpu-tensorflow", engines["cpu-torch"].parent / "x")
    with pytest.raises(CorruptEngineError, match="holds a cpu-openvino engine"):
        load_engine(engines["cpu-openvino"], target="cpu-onnxruntime")


@pytest.mark.parametrize(
    ("target", "missing"),
    [("gpu-onnxruntime-cuda", "CUDA"), ("gpu-tensorrt", "TensorRT")],
)
def test_gpu_targets_fail_fast_naming_what_is_missing(
    target: str, missing: str, tiny_bundle: Path, tmp_path: Path
) -> None:
    with pytest.raises(MissingToolkitError, match=missing):
        build_engine(tiny_bundle, target, tmp_path / "engine")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_engine_is_not_replaced_silently(
    engines: BuiltEngines, tiny_bundle: Path
) -> None:
    before = (engines["cpu-torch"] / "manifest.json").read_bytes()
    with pytest.raises(Exception, match="already exists"):
        build_engine(tiny_bundle, "cpu-torch", engines["cpu-torch"], FAST)
    assert (engines["cpu-torch"] / "manifest.json").read_bytes() == before


def test_dynamic_quantization_is_an_option(tiny_bundle: Path, tmp_path: Path) -> None:
    options = FAST.model_copy(update={"quantization": "dynamic"})
    manifest = build_engine(tiny_bundle, "cpu-onnxruntime-int8", tmp_path / "engine", options)
    assert manifest.build_options["quantization"] == "dynamic"
    assert manifest.parity is not None and manifest.parity.top10_overlap >= 0.95
    engine = load_engine(tmp_path / "engine")
    users = ExportBundle(tiny_bundle).evaluation().head(3)
    assert engine.score(users.user_ids, users.history).shape[0] == 3


# AMD Zen 2 as QEMU models it: AVX2 and FMA, no AVX-512, no VNNI. Its int8 kernels sum
# pairs of uint8 x int8 products in 16 bits, where 8-bit weights can saturate.
AVX2_ONLY_CPU = "EPYC-Rome"
INT8_TARGETS = [t for t in CPU_TARGETS if get_target(t).precision == "int8"]


@pytest.fixture(scope="session")
def emulator() -> str:
    if platform.machine() != "x86_64":
        pytest.skip("emulating an x86 processor needs an x86_64 host")
    path = shutil.which("qemu-x86_64")
    if path is None:
        pytest.skip("qemu-x86_64 is missing: `make deb-deps` installs Debian's qemu-user")
    return path


@pytest.mark.parametrize("target", INT8_TARGETS)
def test_int8_parity_holds_on_an_avx2_only_processor(
    target: str,
    engines: BuiltEngines,
    tiny_bundle: Path,
    reference: Any,
    emulator: str,
    tmp_path: Path,
) -> None:
    """The engine built here, served on an AVX2-only x86 processor (emulated), still
    passes its target's parity gate: its kernels there are not the ones it was built on."""
    out = tmp_path / "scores.npy"
    proc = subprocess.run(
        [
            emulator,
            "-cpu",
            AVX2_ONLY_CPU,
            sys.executable,
            "-m",
            score_users.__name__,
            str(engines[target]),
            str(tiny_bundle),
            "1000",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "AVX2" in seen["isa"] and "AVX512F" not in seen["isa"], seen
    bundle = ExportBundle(tiny_bundle)
    result = score_users.parity_of(np.load(out), engines[target], bundle, 1000, reference)
    check(result, get_target(target).parity, f"{target} on {AVX2_ONLY_CPU}")
