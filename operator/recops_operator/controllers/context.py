"""What every handler needs, created once per operator process and injected into handlers.

Every client the handlers use is built here, once, from the settings, and reaches them
only through the context; tests hand in their own clients (pointed at an emulated API
server, a real MLflow or Prometheus, or a fake) through the same constructor.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Self, cast

import kopf

from recops_operator.api.conditions import utcnow
from recops_operator.api.events import Event
from recops_operator.clients.kubernetes import KubeClient
from recops_operator.clients.mlflow import MlflowRestClient, mlflow_auth
from recops_operator.clients.prometheus import PrometheusClient
from recops_operator.settings import OperatorSettings


@dataclass
class OperatorContext:
    """The settings and the clients of one operator; ``async with`` opens and closes them."""

    settings: OperatorSettings
    kube: KubeClient
    mlflow: MlflowRestClient
    prometheus: PrometheusClient
    clock: Callable[[], datetime] = utcnow
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def __aenter__(self) -> Self:
        await self.kube.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def lock(self, key: str) -> asyncio.Lock:
        """One reconcile per object at a time (create handlers and timers may overlap)."""
        return self._locks.setdefault(key, asyncio.Lock())

    def forget(self, key: str) -> None:
        self._locks.pop(key, None)

    async def aclose(self) -> None:
        await self.mlflow.aclose()
        await self.prometheus.aclose()
        await self.kube.close()


def build_context(settings: OperatorSettings, kube: KubeClient) -> OperatorContext:
    """The operator's clients, each built once from ``settings`` (and the MLFLOW_TRACKING_*
    credentials MLflow's own clients read)."""
    auth, headers = mlflow_auth(os.environ)
    timeout = settings.query_timeout_seconds
    return OperatorContext(
        settings=settings,
        kube=kube,
        # The operator's credentials go to its own tracking server only (docs/security.md).
        mlflow=MlflowRestClient(auth, headers, timeout, home=settings.mlflow_tracking_uri),
        prometheus=PrometheusClient(settings.prometheus_url, timeout),
    )


def post_events(obj: dict[str, Any], events: tuple[Event, ...] | list[Event]) -> None:
    """Kubernetes events on ``obj`` (sent in the background by Kopf)."""
    for ev in events:
        kind: Literal["Normal", "Warning"] = ev.type
        body = kopf.Body(cast(kopf.RawBody, obj))
        kopf.event(body, type=kind, reason=ev.reason, message=ev.message[:1024])
