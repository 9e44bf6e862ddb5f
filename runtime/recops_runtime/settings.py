"""Settings of `recops serve`, validated once at start-up."""

from __future__ import annotations

import math
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recops_contracts.drift import DriftThresholds

MAX_PROCESSES = 64


class BatchingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Most requests per engine call. Small SSE-PT models gain little past 16 "
        "on CPU: larger batches cost more per user than they save.",
    )
    max_batch_delay_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=1000.0,
        description="How long a batch may wait for more requests once requests are backed up. "
        "An idle queue never waits, so 0 (batch whatever queued) suits most loads.",
    )
    max_queue: int = Field(
        default=512,
        ge=1,
        description="Queued requests per version beyond which new ones are shed with "
        "RESOURCE_EXHAUSTED.",
    )
    inline_lone_requests: bool = Field(
        default=True,
        description="Score a lone request on an idle server on the event loop itself, "
        "skipping two thread hand-offs (cheaper for small CPU models). Turn off for engines "
        "whose single call is long: the server accepts nothing while it runs.",
    )
    engine_workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Engine instances per version, each scoring one batch at a time in its "
        "own thread. None: one per CPU this process may use (at most 8) for CPU targets, "
        "one for GPU targets (the device is the shared resource there).",
    )
    engine_threads: int | None = Field(
        default=None,
        ge=1,
        description="Intra-op threads per engine instance. None: the CPUs divided among the "
        "workers (at least 1).",
    )
    cpus: int | None = Field(
        default=None,
        ge=1,
        description="CPUs this process's engines size their defaults by. None: every CPU "
        "the process may use; a server of several processes gives each its share.",
    )

    def _cpus(self) -> int:
        return self.cpus if self.cpus is not None else usable_cpus()

    def resolved_engine_workers(self, gpu: bool = False) -> int:
        if self.engine_workers is not None:
            return self.engine_workers
        return 1 if gpu else min(8, self._cpus())

    def resolved_engine_threads(self, workers: int = 1) -> int:
        if self.engine_threads is not None:
            return self.engine_threads
        return max(1, self._cpus() // max(1, workers))


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota.

    In a Kubernetes pod the affinity mask lists every core of the node while the CPU
    limit is a cgroup quota; sizing thread pools by the node would oversubscribe the pod
    many times over.
    """
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(cgroup: Path) -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max`` or v1 CFS quota); None when unlimited."""
    try:
        if (cgroup / "cpu.max").is_file():
            quota, period = (cgroup / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = cgroup / "cpu"
        if (v1 / "cpu.cfs_quota_us").is_file():
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


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
    feedback_rotate_s: float = Field(
        default=3600.0,
        gt=0,
        description="Seal the feedback log's open segment after this many seconds (training "
        "reads sealed segments only), besides at 64 MiB and on shutdown.",
    )
    drift: DriftThresholds = Field(
        default_factory=DriftThresholds,
        description="Drift windows and thresholds (for engine folders with a drift reference).",
    )
    drain_timeout_s: float = Field(
        default=30.0, ge=0.0, description="Most seconds shutdown waits for accepted requests."
    )
    drain_delay_s: float = Field(
        default=0.0,
        ge=0.0,
        le=300.0,
        description="Seconds to keep serving after SIGTERM while reporting not-ready, so "
        "load balancers stop routing here before the port closes.",
    )
    topk_cache_users: int = Field(
        default=0,
        ge=0,
        le=10_000_000,
        description="Users whose last top-k list is kept, so a request whose history and "
        "shape did not change costs no engine call; 0 (default): off, since a cached list "
        "can order near-tied items differently from a fresh batch's.",
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PROCESSES,
        description="Server processes sharing the gRPC port (SO_REUSEPORT), each with its "
        "own engine workers: one interpreter is GIL-bound well before its cores are busy. "
        "None: one per usable CPU (at most 8).",
    )

    def resolved_processes(self) -> int:
        if self.processes is not None:
            return self.processes
        return min(8, usable_cpus())

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
