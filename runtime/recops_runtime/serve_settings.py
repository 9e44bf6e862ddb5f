"""Settings of `recops serve`, validated once at start-up."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recops_contracts.drift import DriftThresholds

MAX_PROCESSES = 64
# Each per-user store's budget (served lists, histories, the top-k cache) when neither a
# setting nor a cgroup memory limit gives one.
DEFAULT_STORE_BYTES = 64 * 1024 * 1024
# Without a setting, each store may hold this fraction of the pod's memory limit: the three
# together 3/16 (192 MiB of a 1 GiB pod), leaving the engines, their id maps and the
# interpreters the rest. A server of several processes divides its workers' share.
STORE_SHARE_OF_MEMORY = 1 / 16
MIN_STORE_BYTES = 1024 * 1024
# Redis histories expire this long after their user's last feedback.
DEFAULT_HISTORY_TTL_S = 30 * 24 * 3600
# The admin API's own port: on loopback by default, for the pod's own tools only.
DEFAULT_ADMIN_PORT = 8081
# Feedback counts (online hit, training data) only this long after its request was served.
DEFAULT_ATTRIBUTION_WINDOW_S = 3600.0


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


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: an address only local processes reach."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name resolves to anything: treat it as reachable from outside


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


def cgroup_memory_limit(cgroup: Path) -> int | None:
    """Bytes the cgroup may use (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``); None
    when unlimited or unreadable."""
    try:
        if (cgroup / "memory.max").is_file():
            raw = (cgroup / "memory.max").read_text().strip()
            return None if raw == "max" else int(raw)
        v1 = cgroup / "memory" / "memory.limit_in_bytes"
        if v1.is_file():
            limit = int(v1.read_text())
            # cgroup v1 writes "unlimited" as a huge page-rounded number.
            return None if limit >= 1 << 62 else limit
    except (OSError, ValueError):
        return None
    return None


def default_store_bytes(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """One store's budget without a setting: its share of the memory limit, or 64 MiB."""
    limit = cgroup_memory_limit(cgroup)
    if limit is None:
        return DEFAULT_STORE_BYTES
    return max(MIN_STORE_BYTES, int(limit * STORE_SHARE_OF_MEMORY))


@dataclass(frozen=True)
class StoreBudgets:
    """Bytes each per-user store may hold (estimated: ``stores/entry_sizes.py``)."""

    served: int
    history: int
    topk_cache: int


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
    admin_host: str = Field(
        default="127.0.0.1",
        description="Address the admin API (versions, traffic) listens on. Loopback by "
        "default; any other address requires admin_token_file.",
    )
    admin_port: int = Field(default=DEFAULT_ADMIN_PORT, ge=0, le=65535)
    admin_token_file: Path | None = Field(
        default=None,
        description="File holding the bearer token every admin call must carry (a mounted "
        "Secret); required when admin_host is not a loopback address.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate chain: gRPC, HTTP and admin speak TLS."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the cert.")
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle: clients must present a certificate it signed (mTLS).",
    )
    reflection: bool = Field(
        default=True, description="Serve gRPC server reflection (grpcurl's describe)."
    )
    attribution_window_s: float = Field(
        default=DEFAULT_ATTRIBUTION_WINDOW_S,
        gt=0.0,
        description="Seconds after a Recommend during which feedback naming its request id, "
        "from the same user, counts as an online hit and as training data.",
    )
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    redis_url: str | None = Field(default=None, description="History store; None: in memory.")
    history_max_users: int = Field(default=100_000, ge=1)
    history_max_items: int = Field(default=200, ge=1)
    history_ttl_s: int = Field(
        default=DEFAULT_HISTORY_TTL_S,
        ge=1,
        description="Seconds a user's Redis history lives after their last feedback.",
    )
    served_max_bytes: int | None = Field(
        default=None,
        ge=MIN_STORE_BYTES,
        description="Bytes of served lists kept to join clicks with (per process). None: "
        "1/16 of the cgroup memory limit, or 64 MiB without one.",
    )
    history_max_bytes: int | None = Field(
        default=None,
        ge=MIN_STORE_BYTES,
        description="Bytes of in-memory histories. None: 1/16 of the cgroup memory limit, "
        "or 64 MiB without one.",
    )
    topk_cache_max_bytes: int | None = Field(
        default=None,
        ge=MIN_STORE_BYTES,
        description="Bytes of cached top-k lists (per process). None: 1/16 of the cgroup "
        "memory limit, or 64 MiB without one.",
    )
    engines_root: Path | None = Field(
        default=None,
        description="The only folder engineDir may name on the admin API (symlinks and "
        "'..' resolved). None: the folder two levels above each --engine folder (the "
        "<root>/<version>/<target> layout of the operator and the quickstart).",
    )
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
    http_read_timeout_s: float = Field(
        default=5.0,
        gt=0.0,
        le=600.0,
        description="Most seconds an HTTP request body may take to arrive once its headers "
        "have; a body that stops arriving is answered 408 instead of holding the connection.",
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

    def store_budgets(self) -> StoreBudgets:
        default = None
        if None in (self.served_max_bytes, self.history_max_bytes, self.topk_cache_max_bytes):
            default = default_store_bytes()

        def budget(value: int | None) -> int:
            return value if value is not None else int(default or DEFAULT_STORE_BYTES)

        return StoreBudgets(
            served=budget(self.served_max_bytes),
            history=budget(self.history_max_bytes),
            topk_cache=budget(self.topk_cache_max_bytes),
        )

    def engines_roots(self) -> tuple[Path, ...]:
        """The folders engineDir must resolve into."""
        if self.engines_root is not None:
            return (self.engines_root.resolve(),)
        roots: list[Path] = []
        for folder in self.engines.values():
            resolved = folder.resolve()
            root = resolved.parent.parent
            # Never the whole filesystem: an engine at /engine-v1 confines to "/" otherwise.
            if root == root.parent:
                root = resolved.parent if resolved.parent != root else resolved
            if root not in roots:
                roots.append(root)
        return tuple(roots)

    def resolved_processes(self) -> int:
        if self.processes is not None:
            return self.processes
        return min(8, usable_cpus())

    @model_validator(mode="after")
    def _admin_and_tls(self) -> ServeSettings:
        if not is_loopback(self.admin_host) and self.admin_token_file is None:
            raise ValueError(
                f"admin_host: {self.admin_host} is reachable from outside the pod, so the "
                "admin API needs a token: set admin_token_file (--admin-token-file)"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file: give both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file: needs tls_cert_file and tls_key_file")
        return self

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
