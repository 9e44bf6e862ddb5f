"""Real user sequences an engine build scores: parity checks and int8 calibration.

The trainer writes them beside the exported model (it owns the dataset and the split);
the builder reads them back with numpy alone, so the runtime needs no trainer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recops_runtime.engines.base import IntArray
from recops_runtime.engines.errors import CorruptEngineError


@dataclass(frozen=True)
class UserSequences:
    """``history[i]`` (left-padded internal item ids) of user ``user_ids[i]``, and the item
    that user chose next (``targets[i]``; 0 where unknown, as for calibration data)."""

    user_ids: IntArray
    history: IntArray
    targets: IntArray

    def __post_init__(self) -> None:
        n = self.user_ids.shape[0]
        if self.history.ndim != 2 or self.history.shape[0] != n or self.targets.shape != (n,):
            raise ValueError(
                f"user sequences disagree: user_ids {self.user_ids.shape}, "
                f"history {self.history.shape}, targets {self.targets.shape}"
            )

    def __len__(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def maxlen(self) -> int:
        return int(self.history.shape[1])

    def head(self, count: int) -> UserSequences:
        return UserSequences(self.user_ids[:count], self.history[:count], self.targets[:count])

    def truncated(self, maxlen: int) -> UserSequences:
        """The same users with only their last ``maxlen`` items of history."""
        if maxlen > self.maxlen:
            raise ValueError(f"cannot lengthen a history of {self.maxlen} to {maxlen}")
        return UserSequences(self.user_ids, self.history[:, -maxlen:].copy(), self.targets)

    def left_padded(self, maxlen: int) -> UserSequences:
        """The same histories, left-padded with 0 to ``maxlen`` (a longer graph's input)."""
        if maxlen < self.maxlen:
            raise ValueError(f"cannot pad a history of {self.maxlen} to {maxlen}")
        history = np.zeros((len(self), maxlen), np.int64)
        history[:, maxlen - self.maxlen :] = self.history
        return UserSequences(self.user_ids, history, self.targets)

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, user_ids=self.user_ids, history=self.history, targets=self.targets)

    @classmethod
    def load(cls, path: Path) -> UserSequences:
        try:
            with np.load(path) as data:
                return cls(
                    data["user_ids"].astype(np.int64),
                    data["history"].astype(np.int64),
                    data["targets"].astype(np.int64),
                )
        except (OSError, KeyError, ValueError) as error:
            raise CorruptEngineError(f"{path} holds no user sequences: {error}") from error
