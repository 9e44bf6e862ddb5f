"""Settings of the Rollout controller, read from RECOPS_ROLLOUT_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RolloutSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECOPS_ROLLOUT_", extra="forbid")

    prometheus_url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Prometheus for analysis metrics that name no address of their own.",
    )
    query_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one Prometheus or MLflow call."
    )
