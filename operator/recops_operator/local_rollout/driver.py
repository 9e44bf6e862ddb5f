"""The one-machine driver: the decision engine against a running runtime.

It moves the runtime's weighted router through its admin API, measures with a provider
(the runtime's /metrics, or Prometheus), and writes every decision, the weights and the
measurements to a JSON log that a notebook or the quickstart can plot.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from recops_contracts.rollout_log import (
    RolloutLog,
    RolloutMetric,
    RolloutRecord,
    RolloutVerdict,
    RolloutWeights,
)
from recops_operator.analysis_providers import AnalysisProvider
from recops_operator.analysis_providers.scrape import ScrapeProvider
from recops_operator.api import reasons
from recops_operator.api.rollout import MetricResult, RolloutPhase, RolloutStatus, Weights
from recops_operator.api.rollout_policy import AnalysisMetric, BuiltinMetric, RolloutPolicy
from recops_operator.clients.runtime_admin import AdminError, RuntimeAdmin
from recops_operator.rollout.actions import Action, Controls, Outcome
from recops_operator.rollout.analysis import measurement_plan
from recops_operator.rollout.engine import decide
from recops_operator.rollout.observations import Observation
from recops_operator.rollout.status import TERMINAL, initial_status, weights_text

# Longest sleep between decisions, so an interrupt or a deadline is acted on promptly.
MAX_SLEEP = 0.5
# How long past the deadline an unreachable runtime is retried before giving up.
ADMIN_GRACE_S = 60.0


@dataclass
class DecisionLog:
    """The JSON log (``recops_contracts.rollout_log``), rewritten atomically after each
    record so it can be read mid-run; ``doc`` holds the header and the records so far."""

    path: Path | None
    doc: RolloutLog

    def add(
        self,
        elapsed: float,
        outcome: Outcome,
        policy: RolloutPolicy,
        observations: Mapping[str, Observation],
    ) -> None:
        st, action = outcome.status, outcome.action
        metrics = {m.name: m for m in policy.metrics}
        self.doc.records.append(
            RolloutRecord(
                time=datetime.now(UTC).isoformat(timespec="milliseconds"),
                elapsed_s=round(elapsed, 3),
                step_index=st.current_step_index,
                phase=st.phase.value if st.phase else None,
                action=action.kind,
                reason=action.reason,
                message=action.message,
                weights=RolloutWeights.model_validate(action.weights.to_wire()),
                metrics=[
                    logged_metric(m, metrics.get(m.name), observations.get(m.name))
                    for m in outcome.measurements
                ],
            )
        )
        self.flush()

    def flush(self, verdict: RolloutVerdict | None = None) -> None:
        if self.path is None:
            return
        if verdict is not None:
            self.doc.verdict = verdict
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.doc.to_json_dict(), indent=1) + "\n")
        tmp.replace(self.path)


# What a built-in metric's values and threshold are counted in.
_UNITS: dict[BuiltinMetric, Literal["seconds", "fraction"]] = {
    BuiltinMetric.ERROR_RATE: "fraction",
    BuiltinMetric.LATENCY_P99: "seconds",
    BuiltinMetric.HIT_RATE_VS_STABLE: "fraction",
    BuiltinMetric.CTR_VS_STABLE: "fraction",
}
_VS_STABLE = {BuiltinMetric.HIT_RATE_VS_STABLE, BuiltinMetric.CTR_VS_STABLE}


def logged_metric(
    result: MetricResult, metric: AnalysisMetric | None, observation: Observation | None
) -> RolloutMetric:
    """A measurement as the log keeps it: the status' fields, the unit, and, where the
    value is the candidate's minus the stable's, the candidate's own value, so that a
    reader sees both versions and not only their difference."""
    extra: dict[str, object] = {}
    if metric is not None and metric.builtin is not None:
        extra["unit"] = _UNITS[metric.builtin]
        compared = metric.builtin in _VS_STABLE and result.value is not None
        if compared and observation is not None and observation.candidate is not None:
            extra["candidateValue"] = observation.candidate.rate
    return RolloutMetric.model_validate(result.to_wire() | extra)


def read_controls(path: Path | None) -> Controls:
    """Manual controls from a JSON file ({"promote": true}, {"abort": true}, {"retry": 1}).

    The file is the one-machine stand-in for the Rollout's spec fields and annotations; a
    missing or half-written file means no control.
    """
    if path is None or not path.is_file():
        return Controls()
    try:
        raw = json.loads(path.read_text() or "{}")
    except ValueError:
        return Controls()
    if not isinstance(raw, dict):
        return Controls()
    retry = raw.get("retry", 0)
    return Controls(
        promote=raw.get("promote") is True,
        abort=raw.get("abort") is True,
        retry=retry if isinstance(retry, int) and retry >= 0 else 0,
    )


@dataclass
class LocalRollout:
    policy: RolloutPolicy
    admin: RuntimeAdmin
    provider: AnalysisProvider
    stable: str
    candidate: str
    log: DecisionLog
    report: Callable[[float, Outcome], None] = lambda elapsed, outcome: None
    max_duration_s: float = 3600.0
    control_file: Path | None = None

    def _controls(self, elapsed: float, interrupted: bool, phase: RolloutPhase | None) -> Controls:
        if interrupted:
            return Controls(
                abort=True,
                abort_reason=reasons.INTERRUPTED,
                abort_message="interrupted; all traffic back to stable",
            )
        if elapsed > self.max_duration_s and phase not in TERMINAL:
            return Controls(
                abort=True,
                abort_reason=reasons.ROLLOUT_TIMED_OUT,
                abort_message=f"no verdict within {self.max_duration_s:g}s; all traffic "
                "back to stable",
            )
        return read_controls(self.control_file)

    async def run(self, interrupted: Callable[[], bool] = lambda: False) -> RolloutStatus:
        """Drive the rollout to a verdict: Promoted or Aborted (a deadline aborts)."""
        start = time.monotonic()
        status = initial_status(
            self.stable, self.candidate, read_controls(self.control_file), datetime.now(UTC)
        )
        applied: Weights | None = None
        sticky = self.policy.traffic_routing.sticky
        while True:
            elapsed = time.monotonic() - start
            controls = self._controls(elapsed, interrupted(), status.phase)
            now = datetime.now(UTC)
            plan = measurement_plan(self.policy, status, now)
            observations = None
            if plan is not None:
                observations = await self.provider.observe(plan, self.stable, self.candidate)
            ready = await self.admin.version_ready(self.candidate)
            outcome = decide(
                self.policy, status, controls, now, candidate_ready=ready, observations=observations
            )
            weights = outcome.action.weights
            try:
                if weights != applied:
                    await self.admin.set_weights(self.stable, self.candidate, weights, sticky)
                    applied = weights
                    if isinstance(self.provider, ScrapeProvider):
                        # Counters from before the change would blur the new split's window.
                        await self.provider.reset_baseline()
            except AdminError as exc:
                # Not applied, so not stored: the same decision is taken again next time.
                self.report(elapsed, _admin_failure(outcome, str(exc)))
                if elapsed > self.max_duration_s + ADMIN_GRACE_S:
                    raise
                await asyncio.sleep(1.0)
                continue
            if outcome.recorded or outcome.measurements:
                self.log.add(elapsed, outcome, self.policy, observations or {})
                self.report(elapsed, outcome)
            status = outcome.status
            if status.phase in TERMINAL:
                return status
            delay = outcome.action.requeue_after
            await asyncio.sleep(MAX_SLEEP if delay is None else min(delay, MAX_SLEEP))


def _admin_failure(outcome: Outcome, message: str) -> Outcome:
    action = Action("wait", outcome.action.weights, reasons.RUNTIME_UNREACHABLE, message, 1.0)
    return Outcome(action, outcome.status, False)


def verdict(status: RolloutStatus) -> RolloutVerdict:
    return RolloutVerdict(
        phase=status.phase.value if status.phase else None,
        reason=status.reason,
        message=status.message,
        weights=weights_text(status.weights) if status.weights else None,
        step_index=status.current_step_index,
    )
