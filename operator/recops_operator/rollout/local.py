"""The one-machine driver: the decision engine against a running runtime.

It moves the runtime's weighted router through its admin API, measures with a provider
(the runtime's /metrics, or Prometheus), and writes every decision, the weights and the
measurements to a JSON log that a notebook or the quickstart can plot.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recops_operator.api.rollout import RolloutPhase, RolloutStatus, Weights
from recops_operator.api.rollout_policy import RolloutPolicy
from recops_operator.clients.runtime_admin import AdminError, RuntimeAdmin
from recops_operator.rollout import reasons
from recops_operator.rollout.actions import Action, Controls, Outcome
from recops_operator.rollout.analysis import measurement_plan
from recops_operator.rollout.engine import decide
from recops_operator.rollout.providers import AnalysisProvider
from recops_operator.rollout.providers.scrape import ScrapeProvider
from recops_operator.rollout.status import TERMINAL, initial_status, weights_text

# Longest sleep between decisions, so an interrupt or a deadline is acted on promptly.
MAX_SLEEP = 0.5
# How long past the deadline an unreachable runtime is retried before giving up.
ADMIN_GRACE_S = 60.0


@dataclass
class DecisionLog:
    """The JSON log, rewritten atomically after each record so it can be read mid-run.

    ``{"stable", "candidate", "policy", "provider", "records": [...], "verdict": {...}}``;
    each record has ``time``, ``elapsedS`` (seconds since the start), ``stepIndex``,
    ``phase``, ``action``, ``reason``, ``message``, ``weights`` ({"stable", "candidate"})
    and ``metrics`` (the measurements taken, as in the Rollout status); ``verdict`` holds
    the final phase, reason, message and weights.
    """

    path: Path | None
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, elapsed: float, outcome: Outcome) -> None:
        st, action = outcome.status, outcome.action
        self.records.append(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "elapsedS": round(elapsed, 3),
                "stepIndex": st.current_step_index,
                "phase": st.phase.value if st.phase else None,
                "action": action.kind,
                "reason": action.reason,
                "message": action.message,
                "weights": action.weights.to_wire(),
                "metrics": [m.to_wire() for m in outcome.measurements],
            }
        )
        self.flush()

    def flush(self, verdict: dict[str, Any] | None = None) -> None:
        if self.path is None:
            return
        doc = {**self.header, "records": self.records}
        if verdict is not None:
            doc["verdict"] = verdict
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(self.path)


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
                self.log.add(elapsed, outcome)
                self.report(elapsed, outcome)
            status = outcome.status
            if status.phase in TERMINAL:
                return status
            delay = outcome.action.requeue_after
            await asyncio.sleep(MAX_SLEEP if delay is None else min(delay, MAX_SLEEP))


def _admin_failure(outcome: Outcome, message: str) -> Outcome:
    action = Action("wait", outcome.action.weights, reasons.RUNTIME_UNREACHABLE, message, 1.0)
    return Outcome(action, outcome.status, False)


def verdict(status: RolloutStatus) -> dict[str, Any]:
    return {
        "phase": status.phase.value if status.phase else None,
        "reason": status.reason,
        "message": status.message,
        "weights": weights_text(status.weights) if status.weights else None,
        "stepIndex": status.current_step_index,
    }
