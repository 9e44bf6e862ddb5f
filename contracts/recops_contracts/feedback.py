"""The feedback log: what serving pods write and training reads back as new interactions.

A serving pod appends one JSON object per line: a :class:`RecommendationRecord` for each
answered Recommend call and a :class:`FeedbackRecord` for each Feedback call. Segments are
written as ``<name>.jsonl.part`` and sealed by renaming them to ``<name>.jsonl``; readers
read sealed segments only.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, NotRequired

from pydantic import Field, TypeAdapter

# pydantic validates TypedDicts from typing_extensions on Python < 3.12 (typing's lacks
# the details it needs); the records stay plain dicts on the serving path.
from typing_extensions import TypedDict

PART_SUFFIX = ".jsonl.part"
SEALED_SUFFIX = ".jsonl"


# What a client reports of a recommended item.
FeedbackEventName = Literal["impression", "click", "watch", "rating"]
FEEDBACK_EVENTS: tuple[FeedbackEventName, ...] = ("impression", "click", "watch", "rating")
CLICK: FeedbackEventName = "click"
# Events that are interactions (training data, the user's history); an impression is not one.
INTERACTION_EVENTS: frozenset[str] = frozenset({"click", "watch", "rating"})

# Plausible feedback, refused by the service and skipped by ingest beyond these: a time
# before 2000-01-01 or over a day ahead of the reader's clock (milliseconds sent as seconds,
# a sentinel, a broken clock), or a rating outside 0-10 (every MovieLens scale fits, with
# room for 10-point ones; 0 is the value of events that carry none). Training would
# otherwise take them as real interactions.
EARLIEST_FEEDBACK_TS = 946_684_800.0  # 2000-01-01T00:00:00Z
FEEDBACK_CLOCK_SKEW_S = 86_400.0
MAX_RATING = 10.0


def implausible_feedback(ts: float, value: float, now: float) -> str | None:
    """The field and why, when an event's time or value cannot be real; else None."""
    if not math.isfinite(ts) or not EARLIEST_FEEDBACK_TS <= ts <= now + FEEDBACK_CLOCK_SKEW_S:
        return f"ts: {ts:g} is outside {EARLIEST_FEEDBACK_TS:.0f} to a day from now"
    if not math.isfinite(value) or not 0.0 <= value <= MAX_RATING:
        return f"value: {value:g} is outside 0 to {MAX_RATING:g}"
    return None


class RecommendationRecord(TypedDict):
    """One answered Recommend call."""

    kind: Literal["recommendation"]
    ts: float  # Unix time in seconds
    request_id: str
    user_id: str  # original user id
    version: str  # serving version name
    target: str
    model_version: str
    items: list[str]  # original item ids, best first
    fallback: str | None  # the popularity fallback's reason, None when the model answered
    history_source: str  # request, store, none, or unavailable (the store could not be read)


class FeedbackRecord(TypedDict):
    """One feedback event."""

    kind: Literal["feedback"]
    ts: float  # the event's time as the client sent it, else the time it arrived
    request_id: str  # the Recommend call it answers ("" when the client sent none)
    user_id: str
    version: str  # the version that served request_id ("" when unknown)
    item_id: str
    event: FeedbackEventName
    value: float  # the rating, 0 for other events
    recommended: bool  # whether request_id's list held item_id
    # Whether request_id was served to this user within the attribution window: only then
    # is the event an online hit and (by default) training data. Absent in records written
    # before it existed, which ingest keeps as it always did.
    attributed: NotRequired[bool]


LogRecord = Annotated[RecommendationRecord | FeedbackRecord, Field(discriminator="kind")]
_RECORD: TypeAdapter[RecommendationRecord | FeedbackRecord] = TypeAdapter(LogRecord)


def parse_record(line: str | bytes) -> RecommendationRecord | FeedbackRecord:
    """One log line as a typed record; raises pydantic's ValidationError naming the field."""
    return _RECORD.validate_json(line)
