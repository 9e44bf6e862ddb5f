"""`recops data ingest`: feedback logs become a new snapshot with lineage, idempotently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recops_trainer import ingest as ingest_module
from recops_trainer.config import DatasetSource
from recops_trainer.ingest import ingest
from recops_trainer.pipeline import lineage_tags
from recops_trainer.snapshot import build_snapshot, read_snapshot, write_snapshot


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    rows = [(u, i, n) for u in ("u1", "u2") for n, i in enumerate(("a", "b", "c"))]
    frame = pd.DataFrame(rows, columns=["user", "item", "order"])
    snapshot = build_snapshot(frame, DatasetSource(format="sasrec", minInteractions=1))
    return write_snapshot(snapshot, tmp_path / "parent")


def served(request_id: str, user: str, items: list[str], ts: float) -> dict[str, Any]:
    return {
        "kind": "recommendation",
        "ts": ts,
        "request_id": request_id,
        "user_id": user,
        "version": "stable",
        "target": "cpu-onnxruntime",
        "model_version": "1",
        "items": items,
        "fallback": None,
        "history_source": "request",
    }


def event(request_id: str, user: str, item: str, ts: float, kind: str = "click") -> dict[str, Any]:
    return {
        "kind": "feedback",
        "ts": ts,
        "request_id": request_id,
        "user_id": user,
        "version": "stable",
        "item_id": item,
        "event": kind,
        "value": 0.0,
        "recommended": False,
    }


def write_segment(path: Path, records: list[dict[str, Any]], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "feedback"
    write_segment(
        root / "pod-a" / "0001.jsonl",
        [
            served("r1", "u1", ["d", "e"], 1000.0),
            event("r1", "u1", "d", 1100.0),  # on a recommended item, in the window
            event("r1", "u1", "d", 1100.0),  # the same event again
            event("r1", "u1", "x", 1200.0, "impression"),  # not an interaction
            event("r1", "u1", "e", 9000.0, "watch"),  # recommended, after the window
            event("rX", "u3", "f", 1300.0),  # a request nobody logged; a new user and item
        ],
        tail='{"kind": "feedback", "ts": 14',  # torn by a crash
    )
    write_segment(
        root / "pod-b" / "0001.jsonl",
        [
            event("", "u2", "d", 1050.0, "rating"),  # another pod's clock: earlier than r1's
            event("", "u2", "a", 1060.0),  # an item u2 already had
        ],
    )
    (root / "pod-b" / "0002.jsonl.part").write_text(json.dumps(event("", "u2", "z", 2000.0)))
    return root


def test_new_interactions_are_appended_in_event_time_with_every_problem_counted(
    parent: Path, logs: Path, tmp_path: Path
) -> None:
    snapshot, report = ingest(parent, logs, tmp_path / "new", attribution_window_s=3600)
    before = read_snapshot(parent)
    names = [[snapshot.item_ids[i - 1] for i in s] for s in snapshot.sequences]
    by_user = dict(zip(snapshot.user_ids, names, strict=True))
    assert by_user == {
        "u1": ["a", "b", "c", "d", "e"],
        "u2": ["a", "b", "c", "d"],
        "u3": ["f"],
    }
    assert snapshot.user_ids[:2] == before.user_ids and snapshot.item_ids[:3] == before.item_ids
    counts = report.as_dict()
    assert {k: counts[k] for k in ("segments", "invalid", "duplicates", "unknown_requests")} == {
        "segments": 2,
        "invalid": 1,
        "duplicates": 1,
        "unknown_requests": 1,
    }
    assert (report.attributed, report.late, report.repeated_items) == (1, 1, 1)
    assert (report.new_interactions, report.new_users, report.new_items) == (4, 1, 3)
    assert report.invalid_examples[0].startswith(str(Path("pod-a") / "0001.jsonl") + ":7: ")
    lineage = snapshot.manifest["lineage"]
    assert lineage["parent"] == before.hash
    assert [c["segment"] for c in lineage["consumed"]] == [
        str(Path("pod-a") / "0001.jsonl"),
        str(Path("pod-b") / "0001.jsonl"),
    ]
    assert read_snapshot(tmp_path / "new").hash == snapshot.hash != before.hash
    # Training on it tags the run with where its data came from.
    assert lineage_tags(snapshot) == {
        "recops.parent_dataset_hash": before.hash,
        "recops.feedback_interactions": "4",
    }
    assert lineage_tags(before) == {}


def test_ingest_is_idempotent_and_never_consumes_a_segment_twice(
    parent: Path, logs: Path, tmp_path: Path
) -> None:
    first, _ = ingest(parent, logs, tmp_path / "one")
    again, _ = ingest(parent, logs, tmp_path / "two")
    assert again.hash == first.hash
    assert (tmp_path / "one" / "interactions.parquet").read_bytes() == (
        tmp_path / "two" / "interactions.parquet"
    ).read_bytes()
    chained, report = ingest(tmp_path / "one", logs, tmp_path / "three")
    assert report.skipped_segments == 2 and report.new_interactions == 0
    assert chained.hash == first.hash
    assert chained.manifest["lineage"]["parent"] == first.hash


def test_a_crash_while_writing_leaves_the_old_snapshot_whole(
    parent: Path, logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "new"
    first, _ = ingest(parent, logs, out)
    write_segment(logs / "pod-c" / "0001.jsonl", [event("", "u1", "g", 5000.0)])

    def crash(snapshot: object, folder: Path) -> Path:
        (folder / "interactions.parquet").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module, "write_snapshot", crash)
    with pytest.raises(OSError, match="disk full"):
        ingest(parent, logs, out)
    assert read_snapshot(out).hash == first.hash  # the old folder, whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".new")) == []
    assert read_snapshot(parent).hash == first.manifest["lineage"]["parent"]


def test_a_missing_log_folder_is_an_error_naming_it(parent: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere is not a folder"):
        ingest(parent, tmp_path / "nowhere", tmp_path / "new")
