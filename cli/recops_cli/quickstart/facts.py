"""What the quickstart learned, gathered for the report: each stage's output as the typed
contract it was read through (``recops_contracts``), and ``facts.json`` written from them
in the files' own shapes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from recops_contracts.engine_manifest import EngineManifest
from recops_contracts.loadtest import LoadReport
from recops_contracts.rollout_log import RolloutLog
from recops_contracts.training_summary import TrainingSummary


@dataclass
class LoopFacts:
    """What the loop saw, for the report (``Facts.loop``)."""

    stable: str = ""
    candidate: str = ""
    trend: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, float]] = field(default_factory=list)  # (what, unix time)
    triggered: dict[str, float] = field(default_factory=dict)  # statistic -> value
    detection_s: float | None = None
    # The new snapshot's hash and lineage, as `recops data ingest` wrote them.
    ingest: dict[str, Any] = field(default_factory=dict)
    watched_pairs: int = 0
    training: TrainingSummary | None = None
    rollout: RolloutLog | None = None
    # statistic or "hit_rate" -> version -> [(unix time, value)]
    series: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    def mark(self, what: str) -> None:
        self.events.append((what, time.time()))


@dataclass
class Facts:
    """Everything the quickstart learned, gathered for the report."""

    data: str = ""
    synthetic: bool = False
    # Why the data is synthetic (shown in the report), when it is.
    synthetic_reason: str = ""
    stages: list[tuple[str, float]] = field(default_factory=list)
    trainings: dict[str, TrainingSummary] = field(default_factory=dict)
    curves: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    engines: dict[str, dict[str, EngineManifest]] = field(default_factory=dict)
    rollout: RolloutLog | None = None
    traffic: list[LoadReport] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)
    loop: LoopFacts | None = None


def _loop_json(loop: LoopFacts) -> dict[str, Any]:
    training = loop.training
    return asdict(replace(loop, training=None, rollout=None)) | {
        "training": {
            "dataset_hash": training.dataset_hash,
            "gate": training.gate.model_dump() if training.gate else {},
            "model_version": str(training.model_version),
        }
        if training
        else {},
        "rollout": loop.rollout.to_json_dict() if loop.rollout else {},
    }


def facts_json(facts: Facts) -> dict[str, Any]:
    """``facts.json``: every stage output in its file's shape; of each load run's watched
    pairs only their count (the pairs are the loop's to count, not the report's to list)."""
    return {
        "data": facts.data,
        "synthetic": facts.synthetic,
        "stages": facts.stages,
        "trainings": {v: s.to_json_dict() for v, s in facts.trainings.items()},
        "curves": facts.curves,
        "engines": {
            v: {t: m.model_dump(mode="json") for t, m in targets.items()}
            for v, targets in facts.engines.items()
        },
        "rollout": facts.rollout.to_json_dict() if facts.rollout else None,
        "traffic": [r.model_dump(mode="json") | {"watched": len(r.watched)} for r in facts.traffic],
        "addresses": facts.addresses,
        "loop": _loop_json(facts.loop) if facts.loop else None,
    }
