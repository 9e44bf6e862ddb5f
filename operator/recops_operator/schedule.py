"""Cron schedules (five fields, UTC) for periodic retraining; no third-party parser needed."""

from __future__ import annotations

from datetime import datetime, timedelta

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _field(text: str, low: int, high: int, name: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(body)
            if step_text:
                end = high
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"{name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expr: str) -> tuple[set[int], ...]:
    """The allowed values of each field; ValueError names the bad field."""
    fields = _MACROS.get(expr.strip(), expr).split()
    if len(fields) != 5:
        raise ValueError(f"schedule {expr!r} needs 5 fields (minute hour day month weekday)")
    try:
        parsed = tuple(
            _field(f, lo, hi, n) for f, (lo, hi), n in zip(fields, _RANGES, _NAMES, strict=True)
        )
    except ValueError as exc:
        raise ValueError(f"schedule {expr!r}: {exc}") from None
    weekdays = parsed[4]
    if 7 in weekdays:  # both 0 and 7 mean Sunday
        weekdays.add(0)
    return parsed


def next_fire(expr: str, after: datetime) -> datetime:
    """The first minute strictly after ``after`` that matches ``expr``."""
    minutes, hours, days, months, weekdays = parse_cron(expr)
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = t + timedelta(days=366 * 5)
    while t < limit:
        if t.month not in months:
            t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        # Cron's rule: when both day fields are restricted, either may match.
        dom_star, dow_star = len(days) == 31, len(weekdays) >= 7
        day_ok = (
            (t.day in days)
            if dow_star
            else (
                (t.isoweekday() % 7 in weekdays)
                if dom_star
                else (t.day in days or t.isoweekday() % 7 in weekdays)
            )
        )
        if not day_ok:
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
        elif t.hour not in hours:
            t = t.replace(minute=0) + timedelta(hours=1)
        elif t.minute not in minutes:
            t += timedelta(minutes=1)
        else:
            return t
    raise ValueError(f"schedule {expr!r} never fires")
