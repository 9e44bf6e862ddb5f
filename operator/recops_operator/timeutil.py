"""Durations as the API writes them ("30s", "5m", "1h30m", "250ms") and RFC 3339 times.

One parser and one set of formatters for every layer of the operator."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``1h30m``; a malformed one is a ValueError naming it."""
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}: write it like 30s, 5m, 1h30m or 250ms")
    return total


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the form status fields carry."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_time(moment: datetime) -> str:
    """RFC 3339 at the clock's own precision, the form of start and training times."""
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; also reads the seconds-only form Kubernetes writes."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
