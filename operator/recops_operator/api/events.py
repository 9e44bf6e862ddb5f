"""Kubernetes Events the decisions ask the controllers to post."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Event:
    """One Event on the object being reconciled (``type`` Normal or Warning)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
