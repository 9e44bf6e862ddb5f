"""Issue 27, finding 9: feedback is attributed (an online hit, training data) only when
its request id was served to the same user within the attribution window.

Before, a click naming a request served to another user counted as that user's online hit
(``recommended: true``) and fed training.
"""

from __future__ import annotations

import time
from pathlib import Path

from recops_contracts import metrics as m
from recops_runtime.api.messages import FeedbackRequest
from recops_runtime.registry.version_registry import VersionRegistry
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.stores.feedback_log import FeedbackLog, read_feedback_log
from recops_runtime.stores.served import LocalServedLists, Served

ITEMS = frozenset({"a", "b", "c"})


def _plane(served: LocalServedLists, log: FeedbackLog | None = None) -> DataPlane:
    registry = VersionRegistry(loader=lambda folder, threads: None)  # type: ignore[arg-type,return-value]
    return DataPlane(registry, served=served, feedback_log=log, attribution_window_s=600.0)


def _count(plane: DataPlane, name: str, **labels: str) -> float:
    total = 0.0
    for line in plane.metrics.exposition().decode().splitlines():
        if line.startswith(m.total(name) + "{") and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_click_on_a_request_served_to_another_user_is_not_a_hit(tmp_path: Path) -> None:
    served = LocalServedLists()
    log = FeedbackLog(tmp_path / "log")
    plane = _plane(served, log)
    await plane.start()
    served.remember("r1", Served("v1", ITEMS, user_id="alice", at=time.time()))
    stolen = await plane.feedback(FeedbackRequest("mallory", "a", "click", request_id="r1"))
    watched = await plane.feedback(FeedbackRequest("mallory", "b", "watch", request_id="r1"))
    own = await plane.feedback(FeedbackRequest("alice", "a", "click", request_id="r1"))
    assert (stolen.recommended, stolen.version) == (False, "")
    assert (watched.recommended, watched.version) == (False, "")
    assert (own.recommended, own.version) == (True, "v1")
    assert _count(plane, m.ONLINE_HITS) == 1.0  # alice's click only
    assert _count(plane, m.FEEDBACK_UNATTRIBUTED, reason="other_user") == 2.0
    await log.close()
    records = [r for r in read_feedback_log(tmp_path / "log") if r["kind"] == "feedback"]
    marks = [(r["user_id"], r["event"], r["recommended"], r["attributed"]) for r in records]
    assert marks == [
        ("mallory", "click", False, False),
        ("mallory", "watch", False, False),
        ("alice", "click", True, True),
    ]


async def test_feedback_after_the_window_or_without_a_request_is_unattributed() -> None:
    served = LocalServedLists()
    plane = _plane(served)
    served.remember("old", Served("v1", ITEMS, user_id="alice", at=time.time() - 601.0))
    served.remember("new", Served("v1", ITEMS, user_id="alice", at=time.time()))
    late = await plane.feedback(FeedbackRequest("alice", "a", "click", request_id="old"))
    organic = await plane.feedback(FeedbackRequest("alice", "a", "watch"))
    unknown = await plane.feedback(FeedbackRequest("alice", "a", "click", request_id="gone"))
    timely = await plane.feedback(FeedbackRequest("alice", "a", "click", request_id="new"))
    assert [late.recommended, organic.recommended, unknown.recommended] == [False] * 3
    assert timely.recommended
    for reason in ("outside_window", "no_request_id", "unknown_request"):
        assert _count(plane, m.FEEDBACK_UNATTRIBUTED, reason=reason) == 1.0, reason
    assert _count(plane, m.FEEDBACK_UNATTRIBUTED, reason="other_user") == 0.0
    assert _count(plane, m.ONLINE_HITS) == 1.0
