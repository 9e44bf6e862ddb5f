"""Protocol-agnostic requests and responses, and their validation.

Adapters (gRPC, HTTP) build these from their wire messages and call the data plane; the
data plane validates them here so both protocols reject bad input with the same
INVALID_ARGUMENT message naming the field.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from dataclasses import dataclass, field, fields

from recops_contracts.feedback import (
    EARLIEST_FEEDBACK_TS,
    FEEDBACK_CLOCK_SKEW_S,
    FEEDBACK_EVENTS as FEEDBACK_EVENTS,
    MAX_RATING,
    FeedbackEventName as FeedbackEventName,
)
from recops_runtime.api.errors import invalid

DEFAULT_K = 10
MAX_K = 1000
MAX_ID_LENGTH = 256
MAX_LIST_LENGTH = 10_000

# Generated request ids: a random per-process prefix and a counter (unique across
# replicas, and cheaper than a fresh UUID per request).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


@dataclass(slots=True)
class RecommendRequest:
    user_id: str = ""
    history: list[str] = field(default_factory=list)
    k: int = 0
    exclude_seen: bool = False
    exclude_items: list[str] = field(default_factory=list)
    request_id: str = ""
    version: str = ""

    def validate(self) -> None:
        """Checks every field, fills defaults (k, request_id); raises INVALID_ARGUMENT."""
        _check_id("user_id", self.user_id, required=False)
        if not self.user_id and not self.history:
            raise invalid("user_id", "required when history is empty")
        _check_ids("history", self.history)
        _check_ids("exclude_items", self.exclude_items)
        if self.k == 0:
            self.k = DEFAULT_K
        if not 1 <= self.k <= MAX_K:
            raise invalid("k", f"must be between 1 and {MAX_K} (0 means {DEFAULT_K}), got {self.k}")
        if len(self.request_id) > 128:
            raise invalid("request_id", "at most 128 characters")
        if not self.request_id:
            self.request_id = f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"
        _check_id("version", self.version, required=False)


@dataclass(slots=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(slots=True)
class RecommendResponse:
    items: list[ScoredItem]
    request_id: str
    version: str
    target: str
    model_version: str
    fallback_reason: str = ""


@dataclass(slots=True)
class FeedbackRequest:
    user_id: str
    item_id: str
    event: FeedbackEventName
    request_id: str = ""
    timestamp: float = 0.0
    value: float = 0.0

    def validate(self) -> None:
        _check_id("user_id", self.user_id, required=True)
        _check_id("item_id", self.item_id, required=True)
        if self.event not in FEEDBACK_EVENTS:
            raise invalid("event", f"must be one of {', '.join(FEEDBACK_EVENTS)}")
        if len(self.request_id) > 128:
            raise invalid("request_id", "at most 128 characters")
        if not math.isfinite(self.timestamp) or self.timestamp < 0:
            raise invalid("timestamp", "must be a finite, non-negative Unix time (0 means now)")
        if self.timestamp and not (
            EARLIEST_FEEDBACK_TS <= self.timestamp <= time.time() + FEEDBACK_CLOCK_SKEW_S
        ):
            raise invalid(
                "timestamp",
                f"Unix time in seconds between {EARLIEST_FEEDBACK_TS:.0f} (2000-01-01) and a day "
                f"from now (0 means now), got {self.timestamp:g}",
            )
        if not math.isfinite(self.value):
            raise invalid("value", "must be a finite number")
        if not 0.0 <= self.value <= MAX_RATING:
            raise invalid("value", f"a rating between 0 and {MAX_RATING:g}, got {self.value:g}")


@dataclass(slots=True)
class FeedbackResponse:
    recommended: bool
    version: str


@dataclass(slots=True)
class VersionInfo:
    version: str
    target: str
    model_version: str
    precision: str
    num_items: int
    num_users: int
    maxlen: int
    weight: int
    ready: bool
    engine_dir: str


# What ``recops.v1.ModelVersionInfo`` carries, under the same names: all but the server's
# engine folder.
VERSION_WIRE_FIELDS = tuple(f.name for f in fields(VersionInfo) if f.name != "engine_dir")


@dataclass(slots=True)
class ModelInfo:
    versions: list[VersionInfo]
    sticky: bool


def _check_id(name: str, value: str, *, required: bool) -> None:
    if required and not value:
        raise invalid(name, "required")
    if len(value) > MAX_ID_LENGTH:
        raise invalid(name, f"at most {MAX_ID_LENGTH} characters")


def _check_ids(name: str, values: list[str]) -> None:
    if len(values) > MAX_LIST_LENGTH:
        raise invalid(name, f"at most {MAX_LIST_LENGTH} ids, got {len(values)}")
    if not values:
        return
    lengths = list(map(len, values))  # C loops: this runs for every history on every request
    if min(lengths) > 0 and max(lengths) <= MAX_ID_LENGTH:
        return
    for i, value in enumerate(values):
        if not value or len(value) > MAX_ID_LENGTH:
            raise invalid(f"{name}[{i}]", f"ids are 1 to {MAX_ID_LENGTH} characters")
