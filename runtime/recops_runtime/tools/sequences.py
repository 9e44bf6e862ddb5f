"""Held-out user sequences read from MovieLens files, for load tests and benchmarks.

Two layouts are read as they come from their sources: the SASRec/SSE-PT benchmark form
(``user item`` per line, each user's lines in time order, e.g. ``ml-1m.txt``) and
GroupLens' ``u.data`` (``user item rating timestamp``, tab separated, ordered here by
time). Either may be gzipped. Each replayed request sends a user's items before a cut
point as history; the item at the cut is the true next item.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UserSequence:
    user_id: str
    items: tuple[str, ...]  # oldest first


def read_sequences(
    path: Path, *, min_length: int = 3, max_users: int | None = None
) -> list[UserSequence]:
    """Users with at least ``min_length`` items, in the file's user order."""
    opener = gzip.open if path.suffix == ".gz" else open
    timed: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"{path}:{number + 1}: expected 'user item [rating timestamp]'")
            stamp = float(fields[3]) if len(fields) >= 4 else 0.0
            timed[fields[0]].append((stamp, number, fields[1]))
    sequences = []
    for user, events in timed.items():
        if len(events) < min_length:
            continue
        events.sort()  # by timestamp, then file order (the SASRec form has no timestamps)
        sequences.append(UserSequence(user, tuple(item for _, _, item in events)))
        if max_users is not None and len(sequences) >= max_users:
            break
    if not sequences:
        raise ValueError(f"{path} holds no user with {min_length} or more items")
    return sequences
