"""The controllers' reconciles called directly, without Kopf: for tests that need a fixed
order of events between two controllers, or a clock of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from recops_operator.api.events import Event
from recops_operator.clients.kubernetes import KubeClient, KubeConnection, Obj
from recops_operator.clients.mlflow import MlflowRestClient
from recops_operator.clients.prometheus import PrometheusClient
from recops_operator.controllers import recmodel, rollout, trainingrun
from recops_operator.controllers.context import OperatorContext
from recops_operator.settings import OperatorSettings

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def operator_context(
    server: str, kube: KubeClient | None = None, mlflow: MlflowRestClient | None = None
) -> OperatorContext:
    """A context whose Prometheus is unreachable (no analysis step asks it); ``async with``
    it to open its client."""
    settings = OperatorSettings(standalone=True, liveness_endpoint=None, log_format="plain")
    return OperatorContext(
        settings=settings,
        kube=kube or KubeClient(KubeConnection(server=server)),
        mlflow=mlflow or MlflowRestClient(),
        prometheus=PrometheusClient(UNREACHABLE),
    )


@contextlib.contextmanager
def events_recorded() -> Iterator[list[Event]]:
    """The events the controllers post, collected: Kopf posts them only inside a running
    operator."""
    events: list[Event] = []

    def post_events(obj: Obj, posted: tuple[Event, ...] | list[Event]) -> None:
        events.extend(posted)

    with pytest.MonkeyPatch.context() as patcher:
        for module in (recmodel, rollout, trainingrun):
            patcher.setattr(module, "post_events", post_events)
        yield events
