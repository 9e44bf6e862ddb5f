"""Analysis providers: where the rollout engine's observations come from (its I/O side).

- :mod:`.prometheus`: PromQL through the Prometheus client (clusters, and one machine with a
  local Prometheus);
- :mod:`.scrape`: the runtime's own /metrics endpoint, read directly (one machine, no
  Prometheus).

Both speak HTTP through ``clients/`` only: the operator never imports the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from recops_operator.rollout.actions import MeasurementPlan
from recops_operator.rollout.observations import Observation


class AnalysisProvider(Protocol):
    async def observe(
        self, plan: MeasurementPlan, stable: str, candidate: str
    ) -> Mapping[str, Observation]:
        """One observation per metric of ``plan`` over its window; never raises for metrics."""
        ...
