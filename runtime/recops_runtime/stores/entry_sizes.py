"""Estimated bytes of one entry of each per-user store, which their byte budgets count.

Estimates, not measurements: walking an entry with ``sys.getsizeof`` on every request
would cost more than the store itself. Each one is the ids' string lengths plus fixed
overheads read from CPython 3.11 on x86-64 (``sys.getsizeof`` of the empty containers,
and pymalloc's 8-byte rounding), and a served list's set table, read in constant time.
``benchmarks/store_memory.py`` measures the real bytes per entry (tracemalloc) beside
these numbers: within 2% (never below) for every store. A served list's item ids are the
loaded version's id-map strings, shared by every list of the process, so they cost only
their set slots there; in the supervisor's state, where ids arrive as JSON, each list
holds its own copies and counts them (7% over).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np

# A compact ASCII str is a 48-byte header plus its characters and a NUL
# (``sys.getsizeof("") == 49``), rounded up to 8 bytes by pymalloc.
STR_ASCII = 56
# Any other str: an 80-byte header and up to 4 bytes per character (UCS-4).
STR_WIDE = 80
# An OrderedDict slot: the dict's hash table entry (about 3 words at two-thirds load) plus
# the linked-list node that keeps the order (4 words and a 16-byte object header).
ORDERED_SLOT = 112

# A served list: its ``Served`` object (72, plus a 16-byte garbage-collector header), the
# float of when it was served (24), its empty ``hits`` set (216) and the user id (counted
# apart, as the list keeps it alive); its frozenset is counted by ``sys.getsizeof`` (constant
# time, and exact: the table holds 2 to 8 slots of 16 bytes per item as CPython grows a
# set 4x at 60% fill, 82 bytes per item at k=100 and 33 at k=1000, which no per-item
# constant follows).
SERVED_FIXED = ORDERED_SLOT + 88 + 24 + 216
# One clicked item added to a served list's ``hits`` set (a slot, at the set's growth).
HIT_PER_ITEM = 40

# A user's history: the deque (760 bytes with its first 64-slot block) and one pointer per
# item (a block of 64 slots is 528 bytes: 8.25 bytes per item, rounded up).
HISTORY_FIXED = ORDERED_SLOT + 760
HISTORY_PER_ITEM = 9

# A cached top-k list: the (key, result) tuple (56), the key tuple (72) and its 16-byte
# digest (49), the ScoreResult (48), its two arrays' headers (2 x 112) and their data
# allocations' alignment (2 x 16, read off tracemalloc).
TOPK_FIXED = ORDERED_SLOT + 56 + 72 + 49 + 48 + 2 * 112 + 2 * 16


def str_bytes(value: str) -> int:
    """The bytes one str object holds (``isascii`` is a flag read, not a scan)."""
    if value.isascii():
        return STR_ASCII + len(value)
    return STR_WIDE + 4 * len(value)


def ids_bytes(values: Iterable[str]) -> int:
    return sum(str_bytes(v) for v in values)


def served_bytes(
    request_id: str, items: frozenset[str], user_id: str = "", *, ids_owned: bool
) -> int:
    """One served list: the request id, the user id, the list's items and the containers
    holding them;
    the item ids' own bytes only when the list owns them (``ids_owned``: not when they are
    the loaded version's id-map strings, which every list of this process shares)."""
    size = SERVED_FIXED + str_bytes(request_id) + str_bytes(user_id) + sys.getsizeof(items)
    return size + ids_bytes(items) if ids_owned else size


def hit_bytes(item_id: str) -> int:
    return HIT_PER_ITEM + str_bytes(item_id)


def history_user_bytes(user_id: str) -> int:
    """A user's history before its first item."""
    return HISTORY_FIXED + str_bytes(user_id)


def history_item_bytes(item_id: str) -> int:
    return HISTORY_PER_ITEM + str_bytes(item_id)


def topk_bytes(user_id: str, items: np.ndarray, scores: np.ndarray) -> int:
    """One user's cached list: its key, the user id and the two arrays' data."""
    return TOPK_FIXED + str_bytes(user_id) + int(items.nbytes) + int(scores.nbytes)
