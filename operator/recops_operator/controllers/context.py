"""What every handler needs, created once per operator process and injected into handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

import kopf

from recops_operator.api.conditions import utcnow
from recops_operator.decisions.events import Event
from recops_operator.kube.client import KubeClient
from recops_operator.mlflow_rest import MlflowReader
from recops_operator.settings import OperatorSettings


@dataclass
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    clock: Callable[[], datetime] = utcnow
    _mlflow: dict[str, MlflowReader] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, key: str) -> asyncio.Lock:
        """One reconcile per object at a time (create handlers and timers may overlap)."""
        return self._locks.setdefault(key, asyncio.Lock())

    def forget(self, key: str) -> None:
        self._locks.pop(key, None)

    def mlflow(self, tracking_uri: str) -> MlflowReader:
        if tracking_uri not in self._mlflow:
            self._mlflow[tracking_uri] = MlflowReader(tracking_uri)
        return self._mlflow[tracking_uri]

    async def aclose(self) -> None:
        for reader in self._mlflow.values():
            await reader.aclose()
        self._mlflow.clear()


def post_events(obj: dict[str, Any], events: tuple[Event, ...] | list[Event]) -> None:
    """Kubernetes events on ``obj`` (sent in the background by Kopf)."""
    for ev in events:
        kind: Literal["Normal", "Warning"] = ev.type
        body = kopf.Body(cast(kopf.RawBody, obj))
        kopf.event(body, type=kind, reason=ev.reason, message=ev.message[:1024])
