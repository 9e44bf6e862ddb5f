"""What a prepared folder is, shared by its writer and its reader: the layout's name and
version, and the content hash (the sum of each user row's sha256 with both id maps)."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]

LAYOUT = "sequences"
FORMAT_VERSION = 1
MODULUS = 1 << 256


def user_digest(user: int, items: Ints, times: Ints | None) -> int:
    """One user row's share of the content hash."""
    digest = hashlib.sha256(np.int64(user).tobytes())
    digest.update(np.ascontiguousarray(items, "<i8").tobytes())
    if times is not None:
        digest.update(np.ascontiguousarray(times, "<i8").tobytes())
    return int.from_bytes(digest.digest(), "big")


def content_hash(digest_sum: int, user_ids: Ints, item_ids: Ints) -> str:
    digest = hashlib.sha256(b"recops-prepared-v1\0")
    digest.update(digest_sum.to_bytes(32, "big"))
    digest.update(np.ascontiguousarray(user_ids, "<i8").tobytes())
    digest.update(np.ascontiguousarray(item_ids, "<i8").tobytes())
    return digest.hexdigest()
