"""The feedback log: what serving pods write and training reads back as new interactions.

A serving pod appends one JSON object per line: a :class:`RecommendationRecord` for each
answered Recommend call and a :class:`FeedbackRecord` for each Feedback call. Segments are
written as ``<name>.jsonl.part`` and sealed by renaming them to ``<name>.jsonl``; readers
read sealed segments only.
"""

from __future__ import annotations

from typing import Annotated, Literal

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


LogRecord = Annotated[RecommendationRecord | FeedbackRecord, Field(discriminator="kind")]
_RECORD: TypeAdapter[RecommendationRecord | FeedbackRecord] = TypeAdapter(LogRecord)


def parse_record(line: str | bytes) -> RecommendationRecord | FeedbackRecord:
    """One log line as a typed record; raises pydantic's ValidationError naming the field."""
    return _RECORD.validate_json(line)
