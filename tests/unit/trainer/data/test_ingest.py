"""`recops data ingest`: feedback logs become a new snapshot with lineage, idempotently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recops_contracts.training import DatasetSource
from recops_trainer.data import ingest as ingest_module
from recops_trainer.data.ingest import ingest
from recops_trainer.data.snapshot import build_snapshot, read_snapshot, write_snapshot
from recops_trainer.runs.outcome import lineage_tags

# Event times: any plausible Unix time (ingest skips times before 2000 as implausible).
T0 = 1_700_000_000.0


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
            served("r1", "u1", ["d", "e"], T0 + 1000.0),
            event("r1", "u1", "d", T0 + 1100.0),  # on a recommended item, in the window
            event("r1", "u1", "d", T0 + 1100.0),  # the same event again
            event("r1", "u1", "x", T0 + 1200.0, "impression"),  # not an interaction
            event("r1", "u1", "e", T0 + 9000.0, "watch"),  # recommended, after the window
            event("rX", "u3", "f", T0 + 1300.0),  # a request nobody logged; a new user and item
        ],
        tail='{"kind": "feedback", "ts": 14',  # torn by a crash
    )
    write_segment(
        root / "pod-b" / "0001.jsonl",
        [
            event("", "u2", "d", T0 + 1050.0, "rating"),  # another pod's clock: earlier than r1's
            event("", "u2", "a", T0 + 1060.0),  # an item u2 already had
        ],
    )
    (root / "pod-b" / "0002.jsonl.part").write_text(json.dumps(event("", "u2", "z", T0 + 2000.0)))
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
    write_segment(logs / "pod-c" / "0001.jsonl", [event("", "u1", "g", T0 + 5000.0)])

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


def test_new_users_join_only_with_the_parents_min_interactions(tmp_path: Path) -> None:
    rows = [(u, i, n) for u in ("u1", "u2") for n, i in enumerate(("a", "b", "c"))]
    frame = pd.DataFrame(rows, columns=["user", "item", "order"])
    snapshot = build_snapshot(frame, DatasetSource(format="sasrec", minInteractions=2))
    parent = write_snapshot(snapshot, tmp_path / "parent")
    logs = tmp_path / "feedback"
    write_segment(
        logs / "pod-a" / "0001.jsonl",
        [
            event("", "u3", "x", T0 + 1),  # one item: below minInteractions, left out
            event("", "u4", "y", T0 + 2),
            event("", "u4", "y", T0 + 3, "watch"),  # the same item again: still one
            event("", "u5", "a", T0 + 4),  # two items: joins
            event("", "u5", "z", T0 + 5, "rating"),
            event("", "u1", "w", T0 + 6),  # a known user needs no minimum
        ],
    )
    new, report = ingest(parent, logs, tmp_path / "new")
    by_user = {
        u: [new.item_ids[i - 1] for i in s]
        for u, s in zip(new.user_ids, new.sequences, strict=True)
    }
    assert by_user == {"u1": ["a", "b", "c", "w"], "u2": ["a", "b", "c"], "u5": ["a", "z"]}
    assert (report.new_users, report.users_below_min_interactions) == (1, 2)
    assert report.interactions_of_users_below_min == 3  # x, y and y again
    assert "x" not in new.item_ids and "y" not in new.item_ids
    ingested = new.manifest["lineage"]["ingested"]
    assert ingested["users_below_min_interactions"] == 2
    assert new.manifest["min_interactions"] == 2


def test_implausible_times_and_ratings_are_skipped_as_invalid(parent: Path, tmp_path: Path) -> None:
    logs = tmp_path / "feedback"
    rating = event("", "u1", "q", T0, "rating")
    write_segment(
        logs / "pod-a" / "0001.jsonl",
        [
            event("", "u1", "d", 1e300),  # far in the future
            event("", "u1", "e", 5.0),  # 1970: seconds taken for something else
            {**rating, "value": 1e300},
            {**rating, "value": -1.0},
            event("", "u1", "f", T0),  # fine
        ],
    )
    new, report = ingest(parent, logs, tmp_path / "new")
    assert report.invalid == 4 and report.new_interactions == 1
    assert [new.item_ids[i - 1] for i in new.sequences[0]] == ["a", "b", "c", "f"]
    assert report.invalid_examples[0].endswith("ts: 1e+300 is outside 946684800 to a day from now")
    assert "value" in report.invalid_examples[2]
