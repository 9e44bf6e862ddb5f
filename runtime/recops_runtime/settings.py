"""Settings of `recops serve`, validated once at start-up."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BatchingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        default=16, ge=1, le=1024,
        description="Most requests per engine call. Small SSE-PT models gain little past 16 "
        "on CPU: larger batches cost more per user than they save.",
    )  # fmt: skip
    max_batch_delay_ms: float = Field(
        default=0.0, ge=0.0, le=1000.0,
        description="How long a batch may wait for more requests once requests are backed up. "
        "An idle queue never waits, so 0 (batch whatever queued) suits most loads.",
    )  # fmt: skip
    max_queue: int = Field(
        default=512, ge=1,
        description="Queued requests per version beyond which new ones are shed with "
        "RESOURCE_EXHAUSTED.",
    )  # fmt: skip
    engine_threads: int | None = Field(
        default=None, ge=1,
        description="Intra-op threads per engine. None: one less than the CPUs this process "
        "may use (at least 1), leaving a core to the event loop that decodes requests.",
    )  # fmt: skip

    def resolved_engine_threads(self) -> int:
        if self.engine_threads is not None:
            return self.engine_threads
        return max(1, len(os.sched_getaffinity(0)) - 1)


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engines: dict[str, Path] = Field(
        min_length=1, description="Version name to engine folder, e.g. {'v1': 'engines/v1'}."
    )
    weights: dict[str, int] | None = Field(
        default=None,
        description="Traffic split in percent, summing to 100. Default: the first version "
        "takes all traffic and the others start dark.",
    )
    sticky: bool = Field(default=False, description="Keep each user on one version.")
    host: str = Field(default="0.0.0.0", description="Address every listener binds to.")
    grpc_port: int = Field(default=8500, ge=0, le=65535)
    http_port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    redis_url: str | None = Field(default=None, description="History store; None: in memory.")
    history_max_users: int = Field(default=100_000, ge=1)
    history_max_items: int = Field(default=200, ge=1)
    feedback_log: Path | None = Field(default=None, description="Feedback log folder.")
    drain_timeout_s: float = Field(
        default=30.0, ge=0.0, description="Most seconds shutdown waits for accepted requests."
    )
    drain_delay_s: float = Field(
        default=0.0, ge=0.0, le=300.0,
        description="Seconds to keep serving after SIGTERM while reporting not-ready, so "
        "load balancers stop routing here before the port closes.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _weights_name_engines(self) -> ServeSettings:
        if self.weights is not None:
            unknown = sorted(set(self.weights) - set(self.engines))
            if unknown:
                raise ValueError(
                    f"weights name {', '.join(unknown)} but only "
                    f"{', '.join(sorted(self.engines))} are given with --engine"
                )
            if sum(self.weights.values()) != 100:
                raise ValueError(f"weights must sum to 100, got {sum(self.weights.values())}")
        return self
