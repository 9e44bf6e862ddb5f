"""Dropping the leading all-padding columns of a batch before a graph that allows it.

Histories are left-padded to ``maxlen``; a graph exported with right-aligned positions
(``InputSpec.dynamic_length``) scores a shorter history exactly as its padded form, so a
batch whose longest history is short costs that length, not ``maxlen``.
"""

from __future__ import annotations

import numpy as np

from recops_runtime.engines.base import IntArray

# Lengths are rounded up to a multiple of this, so a runtime meets at most
# maxlen / BUCKET distinct shapes (OpenVINO and TensorRT specialize per shape).
BUCKET = 16


def trim_leading_padding(history: IntArray, bucket: int = BUCKET) -> IntArray:
    """``history[:, k:]`` where columns before ``k`` are padding in every row (a view)."""
    maxlen = history.shape[1]
    used = np.flatnonzero(history.any(axis=0))
    length = maxlen - int(used[0]) if used.size else 1
    length = min(maxlen, -(-length // bucket) * bucket)
    return history[:, maxlen - length :]
