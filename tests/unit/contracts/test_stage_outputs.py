"""The JSON one stage writes and another reads: parsed through the contract, written back
in exactly the shape it was read in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from recops_contracts.engine_manifest import EngineManifest, InputSpec, LatencyResult
from recops_contracts.loadtest import LoadReport
from recops_contracts.rollout_log import RolloutLog
from recops_contracts.training import EvaluationProtocol
from recops_contracts.training_summary import TrainingSummary

TRAINED: dict[str, Any] = {
    "output": "/w/train/v2",
    "model_dir": "/w/train/v2/model",
    "dataset_hash": "ab" * 32,
    "synthetic": False,
    "epochs": 8,
    "best_epoch": 6,
    "seconds": 41.3,
    "test": {
        "sampled": {"protocol": "sampled", "users": 943, "ndcg@10": 0.41, "hr@10": 0.66},
        "full": {"protocol": "full", "users": 943, "ndcg@10": 0.05, "cold_start": {"users": 3}},
    },
    "mlflow_run_id": "r1",
    "tracking_uri": "sqlite:///w/mlflow.db",
    "registered_model": "quickstart-movies",
    "model_version": "2",
    "gate": {"verdict": "candidate", "reason": "ndcg 0.41 >= champion 0.30 + margin 0.005"},
}


def test_the_training_summary_prints_as_it_always_did() -> None:
    summary = TrainingSummary.model_validate(TRAINED)
    assert json.dumps(summary.to_json_dict(), indent=2) == json.dumps(TRAINED, indent=2)
    assert summary.test_metric(EvaluationProtocol.SAMPLED, "ndcg@10") == 0.41
    assert summary.test_metric(EvaluationProtocol.FULL, "hr@10") is None


def test_an_untracked_run_prints_no_registry_fields() -> None:
    local = {k: v for k, v in TRAINED.items() if k not in {"mlflow_run_id", "tracking_uri"}}
    local = {k: v for k, v in local.items() if k not in {"registered_model", "model_version"}}
    local.pop("gate")
    assert TrainingSummary.model_validate(local).to_json_dict() == local


def test_a_gate_verdict_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValidationError, match="verdict"):
        TrainingSummary.model_validate(TRAINED | {"gate": {"verdict": "maybe", "reason": ""}})


LOG: dict[str, Any] = {
    "stable": "1",
    "candidate": "2",
    "policy": {"steps": [{"setWeight": 25}], "analysisInterval": "6s"},
    "provider": "scrape http://127.0.0.1:9090/metrics",
    "records": [
        {
            "time": "2026-01-01T00:00:00.000+00:00",
            "elapsedS": 6.012,
            "stepIndex": 1,
            "phase": "Progressing",
            "action": "analyze",
            "reason": "AnalysisRunning",
            "message": "",
            "weights": {"stable": 75, "candidate": 25},
            "metrics": [
                {"name": "hit-rate", "phase": "Successful", "value": 0.02, "threshold": -0.03},
                {"name": "error-rate", "phase": "Inconclusive", "threshold": 0.01},
            ],
        }
    ],
}


def test_the_rollout_log_round_trips_in_its_own_shape() -> None:
    running = RolloutLog.model_validate(LOG)
    assert running.to_json_dict() == LOG
    metrics = running.records[0].metrics
    assert [m.value for m in metrics] == [0.02, None]
    verdict = {
        "phase": "Promoted",
        "reason": "RolloutCompleted",
        "message": "all steps passed",
        "weights": "stable=0 candidate=100",
        "stepIndex": 5,
    }
    ended = RolloutLog.model_validate(LOG | {"verdict": verdict})
    assert ended.to_json_dict() == LOG | {"verdict": verdict}
    assert ended.verdict is not None and ended.verdict.phase == "Promoted"


def test_the_engine_manifest_and_the_loadtest_report_are_the_files_own_models() -> None:
    manifest = EngineManifest(
        target="cpu-onnxruntime",
        precision="fp32",
        input_spec=InputSpec(maxlen=30, num_items=10, num_users=4),
        model_version="2",
        model_sha256="0" * 64,
        artifact="model.onnx",
        files={"model.onnx": "1" * 64},
        latency=[LatencyResult(batch=1, p50_ms=0.4, p99_ms=0.9, users_per_second=2000.0)],
    )
    again = EngineManifest.model_validate_json(manifest.model_dump_json(indent=2))
    assert again == manifest
    assert again.latency_at(1) is not None and again.latency_at(64) is None
    with pytest.raises(ValidationError):
        LoadReport.model_validate({"mode": "open"})
