"""Issue 27, finding 9, the training side: feedback the service marked unattributed (a
click on a request served to another user, say) is not training data unless asked for,
and ingest counts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from recops_contracts.training import DatasetSource
from recops_trainer.data.ingest import extend_with_feedback
from recops_trainer.data.snapshot import build_snapshot

T0 = 1_700_000_000.0


def _feedback(user: str, item: str, attributed: bool | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "feedback",
        "ts": T0 + 10,
        "request_id": "r1",
        "user_id": user,
        "version": "v1" if attributed else "",
        "item_id": item,
        "event": "click",
        "value": 0.0,
        "recommended": bool(attributed),
    }
    if attributed is not None:
        record["attributed"] = attributed
    return record


def test_unattributed_feedback_is_left_out_unless_included(tmp_path: Path) -> None:
    rows = [(u, i, n) for u in ("alice", "mallory") for n, i in enumerate(("a", "b", "c"))]
    frame = pd.DataFrame(rows, columns=["user", "item", "order"])
    parent = build_snapshot(frame, DatasetSource(format="sasrec", minInteractions=1))
    served = {
        "kind": "recommendation",
        "ts": T0,
        "request_id": "r1",
        "user_id": "alice",
        "version": "v1",
        "target": "cpu-onnxruntime",
        "model_version": "1",
        "items": ["d", "e"],
        "fallback": None,
        "history_source": "request",
    }
    records = [
        served,
        _feedback("alice", "d", True),  # alice clicks her own recommendation
        _feedback("mallory", "e", False),  # mallory names alice's request
        _feedback("alice", "f", None),  # written before the field existed: kept
    ]
    log = tmp_path / "feedback" / "pod" / "0001.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in records))

    default, report = extend_with_feedback(parent, tmp_path / "feedback")
    assert report.unattributed == 1
    assert report.new_interactions == 2
    mallory = default.user_ids.index("mallory")
    assert "e" not in [default.item_ids[i - 1] for i in default.sequences[mallory].tolist()]
    ingested = default.manifest["lineage"]["ingested"]
    assert ingested["unattributed"] == 1 and ingested["include_unattributed"] is False

    included, report = extend_with_feedback(
        parent, tmp_path / "feedback", include_unattributed=True
    )
    assert report.unattributed == 1 and report.new_interactions == 3
    mallory = included.user_ids.index("mallory")
    assert "e" in [included.item_ids[i - 1] for i in included.sequences[mallory].tolist()]
