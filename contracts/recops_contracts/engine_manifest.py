"""An engine folder's ``manifest.json``: what `recops compile` built, from what, with which
tools, and what it measured.

`recops compile` writes it; the runtime reads it before it opens any artifact (every file
is pinned by a sha256), a compile Job returns it as its termination message for the
operator's ``status.engines``, and the quickstart reports its parity and latency.
snake_case on disk, as it has always been.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.json"
ID_MAPS_FILE = "id_maps.json"


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maxlen: int = Field(ge=1, description="History length the graph takes.")
    num_items: int = Field(ge=1, description="Items; scores have num_items + 1 columns.")
    num_users: int = Field(ge=0, description="Users known at training time.")
    dynamic_length: bool = Field(
        default=False,
        description="The graph also takes histories shorter than maxlen (right-aligned "
        "positions); the engine drops leading all-padding columns of a batch.",
    )


class ParityResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: int = Field(ge=0)
    max_abs_diff: float = Field(ge=0.0)
    top10_overlap: float = Field(ge=0.0, le=1.0)
    ndcg10_reference: float
    ndcg10_engine: float
    ndcg10_delta: float
    reference_maxlen: int | None = Field(
        default=None, description="History length the reference saw (shorter for edge builds)."
    )
    ndcg10_full_history: float | None = Field(
        default=None,
        description="NDCG@10 of the reference with the model's full history, where the "
        "engine takes a shorter one (what the shorter history costs).",
    )


class LatencyResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(ge=1)
    p50_ms: float = Field(ge=0.0)
    p99_ms: float = Field(ge=0.0)
    users_per_second: float = Field(ge=0.0)


class CpuInfo(BaseModel):
    """A processor as the engines see it: architecture, model and the relevant extensions
    (the runtime's ``engines.cpu`` describes the host and says why they matter)."""

    model_config = ConfigDict(extra="forbid")

    machine: str = Field(description="Architecture, as platform.machine() names it.")
    model: str = Field(default="", description="Model name from /proc/cpuinfo, if known.")
    isa: list[str] = Field(
        default_factory=list, description="Instruction-set extensions that select kernels."
    )

    @property
    def int8_kernels(self) -> str:
        """The class of int8 dot-product kernels this processor runs."""
        flags = set(self.isa)
        if "AVX512VNNI" in flags:
            return "x86-avx512-vnni"
        if "AVX512BW" in flags:
            return "x86-avx512"
        if "AVX2" in flags:
            return "x86-avx2"
        if "ASIMDDP" in flags:
            return "arm-dotprod"
        if "ASIMD" in flags:
            return "arm-neon"
        return f"{self.machine or 'unknown'}-generic"


class EngineManifest(BaseModel):
    """What was built, from what, with which tools, and what was measured."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(default=1)
    target: str = Field(description="Target name, e.g. cpu-onnxruntime.")
    precision: str = Field(description="fp32, fp16 or int8.")
    opset: int | None = Field(default=None, description="ONNX opset, where ONNX is involved.")
    input_spec: InputSpec
    model_name: str | None = Field(default=None, description="Registered model name.")
    model_version: str = Field(description="Source model version.")
    model_sha256: str = Field(description="sha256 of the source model weights.")
    dataset_hash: str | None = Field(default=None)
    id_maps: str = Field(default=ID_MAPS_FILE, description="Id maps file, relative.")
    artifact: str = Field(description="Main artifact file, relative.")
    files: dict[str, str] = Field(description="Relative path to sha256 of every engine file.")
    tool_versions: dict[str, str] = Field(default_factory=dict)
    parity: ParityResult | None = None
    latency: list[LatencyResult] = Field(default_factory=list)
    built_at: str | None = None
    measured_on: CpuInfo | None = Field(
        default=None,
        description="The processor parity and latency were measured on: int8 kernels, and "
        "so int8 rankings, differ by instruction set.",
    )
    build_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="How it was built: quantization, calibration, threads."
    )

    def latency_at(self, batch: int) -> LatencyResult | None:
        """The latency measured at ``batch`` requests per call, if it was."""
        return next((lat for lat in self.latency if lat.batch == batch), None)
