"""The processor description an engine manifest records, and its int8 kernel class."""

from __future__ import annotations

import pytest

from recops_runtime.engines.cpu import describe_cpu, host_cpu

EPYC_ROME = {"SSE42": True, "AVX": True, "F16C": True, "FMA3": True, "AVX2": True}
SAPPHIRE_RAPIDS = {
    **EPYC_ROME,
    "AVX512F": True,
    "AVX512BW": True,
    "AVX512VL": True,
    "AVX512VNNI": True,
    "AVX512BF16": True,
}
SKYLAKE_SERVER = {**EPYC_ROME, "AVX512F": True, "AVX512BW": True, "AVX512VL": True}
GRAVITON2 = {"ASIMD": True, "ASIMDHP": True, "ASIMDDP": True}


@pytest.mark.parametrize(
    ("features", "machine", "kernels"),
    [
        (EPYC_ROME, "x86_64", "x86-avx2"),
        (SKYLAKE_SERVER, "x86_64", "x86-avx512"),
        (SAPPHIRE_RAPIDS, "x86_64", "x86-avx512-vnni"),
        (GRAVITON2, "aarch64", "arm-dotprod"),
        ({"ASIMD": True}, "aarch64", "arm-neon"),
        ({}, "riscv64", "riscv64-generic"),
    ],
)
def test_int8_kernel_classes(features: dict[str, bool], machine: str, kernels: str) -> None:
    assert describe_cpu(features, machine).int8_kernels == kernels


def test_only_kernel_selecting_features_are_kept_with_the_model_name() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\n"
    cpu = describe_cpu({**EPYC_ROME, "MMX": True, "POPCNT": True, "XOP": False}, "x86_64", cpuinfo)
    assert cpu.model == "AMD EPYC 7B12"
    assert cpu.isa == ["SSE42", "AVX", "F16C", "FMA3", "AVX2"]


def test_this_host_is_described() -> None:
    cpu = host_cpu()
    assert cpu.machine and cpu.int8_kernels
