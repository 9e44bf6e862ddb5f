"""Feedback becomes a new, versioned dataset snapshot (`recops data ingest`).

The new snapshot is the parent's interactions plus the interactions (clicks, watches,
ratings) of the feedback log's sealed segments that no snapshot of its lineage consumed,
each user's new items after their old ones, in event-time order. Its manifest records the
parent's hash and every consumed segment (name and sha256), so:

- running it twice on the same parent and logs writes the same snapshot (same hash);
- running it on its own output consumes nothing again;
- the new folder appears whole or not at all (written beside, then swapped in), and the
  parent is never touched.

Bad input is counted, never silently dropped or fatal: lines that are not records of the
shared schema (``recops_contracts.feedback``: a torn or corrupt segment) or whose time or
rating cannot be real (the bounds the service refuses beyond), events repeated
(a replica that retried, a segment copied twice), feedback whose request id no served list
in the logs knows, and feedback outside the attribution window of its recommendation.
Feedback the service marked unattributed (``attributed: false``: its request was not
served to that user within the window, or it named none) is left out and counted, unless
``include_unattributed``: anyone may send feedback, so only attributed events are trusted
as training data by default.
Events are ordered by their own time (the client's, else arrival), with ties in log order,
so clock skew between pods moves an event among its neighbours, not out of the data.

A user new to the snapshot joins with their feedback only once they have as many distinct
items as the parent's ``min_interactions`` (the rule its own users passed); the users left
out, and their interactions, are counted. Known users need no minimum.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from recops_contracts.feedback import (
    INTERACTION_EVENTS,
    SEALED_SUFFIX,
    implausible_feedback,
    parse_record,
)
from recops_contracts.wire import describe_errors
from recops_runtime.folders import staged_folder
from recops_trainer.data.datasets import file_digest
from recops_trainer.data.snapshot import (
    Ints,
    Snapshot,
    content_hash,
    flat_interactions,
    read_snapshot,
    sequence_stats,
    write_snapshot,
)

log = logging.getLogger("recops.ingest")

LINEAGE = "lineage"


@dataclass
class IngestReport:
    """What an ingest read and did, as counts (also written to the new manifest)."""

    segments: int = 0  # sealed segments read
    skipped_segments: int = 0  # already consumed by the parent's lineage
    lines: int = 0
    invalid: int = 0  # not a record of the shared schema (torn or corrupt)
    recommendations: int = 0
    feedback: int = 0
    duplicates: int = 0  # the same event again
    unknown_requests: int = 0  # feedback naming a request no served list in the logs knows
    attributed: int = 0  # interactions on an item their request recommended, in the window
    late: int = 0  # interactions after the attribution window of their recommendation
    # Interactions the service marked unattributed; left out unless include_unattributed.
    unattributed: int = 0
    new_interactions: int = 0  # appended to the snapshot
    repeated_items: int = 0  # an item the user already had: the first time counts
    new_users: int = 0
    # New users with fewer distinct items than the parent's min_interactions: left out.
    users_below_min_interactions: int = 0
    interactions_of_users_below_min: int = 0
    new_items: int = 0
    seconds: float = 0.0
    invalid_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "invalid_examples"}


@dataclass(frozen=True)
class _Event:
    ts: float
    segment: int
    line: int
    user: str
    item: str


def consumed_segments(manifest: dict[str, Any]) -> set[str]:
    """sha256 of every segment the snapshot's lineage consumed."""
    lineage = manifest.get(LINEAGE) or {}
    return {s["sha256"] for s in lineage.get("consumed", [])}


def ingest(
    parent_dir: Path,
    feedback_log: Path,
    out_dir: Path,
    *,
    attribution_window_s: float = 3600.0,
    include_unattributed: bool = False,
) -> tuple[Snapshot, IngestReport]:
    """Write the parent snapshot plus the logs' new interactions to ``out_dir``."""
    parent = read_snapshot(parent_dir)
    if not feedback_log.is_dir():
        raise FileNotFoundError(f"--feedback-log {feedback_log} is not a folder")
    snapshot, report = extend_with_feedback(
        parent,
        feedback_log,
        attribution_window_s=attribution_window_s,
        include_unattributed=include_unattributed,
    )
    # Written beside, then swapped in: a crash leaves the old folder (or none).
    with staged_folder(out_dir, "ingest") as staging:
        write_snapshot(snapshot, staging)
    return snapshot, report


def extend_with_feedback(
    parent: Snapshot,
    feedback_log: Path,
    *,
    attribution_window_s: float = 3600.0,
    include_unattributed: bool = False,
) -> tuple[Snapshot, IngestReport]:
    """The parent plus the logs' new interactions, in memory, with its lineage."""
    started = time.perf_counter()
    report = IngestReport()
    seen_segments = consumed_segments(parent.manifest)
    consumed: list[dict[str, Any]] = []
    served: dict[str, tuple[float, frozenset[str]]] = {}
    events: dict[tuple[str, str, str, str, float], _Event] = {}
    feedback_rows: list[tuple[str, str, str, str, float, int, int]] = []
    segments = sorted(feedback_log.rglob(f"*{SEALED_SUFFIX}"))
    now = time.time()

    def skip(segment: Path, number: int, problem: str) -> None:
        report.invalid += 1
        if len(report.invalid_examples) < 5:
            where = segment.relative_to(feedback_log)
            report.invalid_examples.append(f"{where}:{number}: {problem}")

    for index, segment in enumerate(segments):
        sha = file_digest(segment)
        if sha in seen_segments:
            report.skipped_segments += 1
            continue
        seen_segments.add(sha)  # the same segment twice in the tree is read once
        report.segments += 1
        records = 0
        with segment.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                report.lines += 1
                try:
                    record = parse_record(line)
                except ValidationError as exc:
                    skip(segment, number, describe_errors(exc).split("; ")[0])
                    continue
                if record["kind"] == "feedback" and (
                    problem := implausible_feedback(record["ts"], record["value"], now)
                ):
                    skip(segment, number, problem)
                    continue
                records += 1
                if record["kind"] == "recommendation":
                    report.recommendations += 1
                    served[record["request_id"]] = (record["ts"], frozenset(record["items"]))
                    continue
                report.feedback += 1
                if record["event"] not in INTERACTION_EVENTS:
                    continue
                if not record.get("attributed", True):
                    report.unattributed += 1
                    if not include_unattributed:
                        continue
                feedback_rows.append(
                    (
                        record["request_id"],
                        record["user_id"],
                        record["item_id"],
                        record["event"],
                        record["ts"],
                        index,
                        number,
                    )
                )
        consumed.append(
            {"segment": str(segment.relative_to(feedback_log)), "sha256": sha, "records": records}
        )
    for request_id, user, item, event, ts, index, number in feedback_rows:
        key = (request_id, user, item, event, ts)
        if key in events:
            report.duplicates += 1
            continue
        events[key] = _Event(ts, index, number, user, item)
        if not request_id:
            continue
        recommendation = served.get(request_id)
        if recommendation is None:
            report.unknown_requests += 1
        elif item in recommendation[1]:
            if ts - recommendation[0] <= attribution_window_s:
                report.attributed += 1
            else:
                report.late += 1
    ordered = sorted(events.values(), key=lambda e: (e.ts, e.segment, e.line))
    snapshot = _extend(parent, ordered, report)
    snapshot.manifest[LINEAGE] = {
        "parent": parent.hash,
        "consumed": [*(parent.manifest.get(LINEAGE) or {}).get("consumed", []), *consumed],
        "ingested": report.as_dict()
        | {
            "attribution_window_s": attribution_window_s,
            "include_unattributed": include_unattributed,
        },
    }
    report.seconds = round(time.perf_counter() - started, 3)
    snapshot.manifest[LINEAGE]["ingested"]["seconds"] = report.seconds
    if report.invalid:
        log.warning(
            "skipped %d feedback log lines that are not records, e.g. %s",
            report.invalid,
            "; ".join(report.invalid_examples),
        )
    return snapshot, report


def _new_users_below(parent: Snapshot, events: list[_Event], known: dict[str, int]) -> set[str]:
    """New users with fewer distinct items than the parent's ``min_interactions``."""
    minimum = int(parent.manifest.get("min_interactions", 1))
    items: dict[str, set[str]] = {}
    for event in events:
        if event.user not in known:
            items.setdefault(event.user, set()).add(event.item)
    return {user for user, theirs in items.items() if len(theirs) < minimum}


def _extend(parent: Snapshot, events: list[_Event], report: IngestReport) -> Snapshot:
    user_ids, item_ids = list(parent.user_ids), list(parent.item_ids)
    user_index = {u: i + 1 for i, u in enumerate(user_ids)}
    item_index = {it: i + 1 for i, it in enumerate(item_ids)}
    had = [set(s.tolist()) for s in parent.sequences]
    added: dict[int, list[int]] = {}
    below = _new_users_below(parent, events, user_index)
    report.users_below_min_interactions = len(below)
    for event in events:
        if event.user in below:
            report.interactions_of_users_below_min += 1
            continue
        user = user_index.get(event.user)
        if user is None:
            user_ids.append(event.user)
            user = user_index[event.user] = len(user_ids)
            had.append(set())
            report.new_users += 1
        item = item_index.get(event.item)
        if item is None:
            item_ids.append(event.item)
            item = item_index[event.item] = len(item_ids)
            report.new_items += 1
        if item in had[user - 1]:
            report.repeated_items += 1
            continue
        had[user - 1].add(item)
        added.setdefault(user, []).append(item)
        report.new_interactions += 1
    empty: Ints = np.zeros(0, np.int64)
    old = [*parent.sequences, *([empty] * (len(user_ids) - parent.num_users))]
    sequences = [
        np.concatenate([s, np.asarray(added.get(u + 1, []), np.int64)]) for u, s in enumerate(old)
    ]
    users, items = flat_interactions(sequences)
    manifest = {
        **{k: v for k, v in parent.manifest.items() if k not in (LINEAGE, "hash", "stats")},
        "hash": content_hash(users, items, user_ids, item_ids),
        "source": f"{parent.hash[:12]} + {report.new_interactions} feedback interactions",
        "stats": sequence_stats(sequences, len(item_ids)),
    }
    return Snapshot(sequences, user_ids, item_ids, manifest)
