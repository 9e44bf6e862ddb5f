"""The report of `recops loadtest --json`: requests, errors, latency and clicks, overall
and per served version.

The runtime's load generator writes it; the quickstart's simulated users are a run of
them, and its report adds them up per version. snake_case on disk, as it has always been.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class VersionReport(BaseModel):
    version: str
    requests: int
    ok: int
    errors: dict[str, int]
    error_rate: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    clicks: int
    hit_rate: float


class LoadReport(BaseModel):
    mode: str
    concurrency: int | None
    rate: float | None
    elapsed_s: float
    requests: int
    throughput_rps: float
    error_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    feedback_sent: int
    feedback_errors: int
    watch_sent: int = 0
    # Distinct (user, item) pairs sent as watches: what a snapshot ingesting the feedback
    # log should gain, counted by the sender.
    watched: list[tuple[str, str]] = Field(default_factory=list)
    versions: list[VersionReport]
    overall: VersionReport
