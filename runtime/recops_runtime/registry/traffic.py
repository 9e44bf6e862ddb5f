"""The weighted split of traffic between model versions, optionally sticky per user.

Weights are integers summing to 100. Without stickiness each request draws a version at
random by weight. With stickiness a user's id hashes to a fixed bucket in 0..99 and the
bucket picks the version, so a user keeps one version while the weights stay put, and
only the users in the moved buckets change version when a rollout shifts weight.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping

from recops_runtime.api.errors import ServiceError, Status, invalid


class TrafficSplit:
    def __init__(self, weights: Mapping[str, int], *, sticky: bool = False) -> None:
        self._weights: dict[str, int] = {}
        self._names: list[str] = []
        self._cumulative: list[int] = []
        self.sticky = sticky
        self._random = random.Random()
        if weights:
            self.set(weights, sticky=sticky, known=weights.keys())

    @property
    def weights(self) -> dict[str, int]:
        return dict(self._weights)

    def set(self, weights: Mapping[str, int], *, sticky: bool, known: Iterable[str]) -> None:
        """Replaces the split; every version must be loaded and the weights sum to 100."""
        known_set = set(known)
        for name, weight in weights.items():
            if name not in known_set:
                raise invalid(
                    f"weights.{name}",
                    f"version {name!r} is not loaded (loaded: {', '.join(sorted(known_set))})",
                )
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise invalid(f"weights.{name}", f"must be an integer 0..100, got {weight!r}")
        if sum(weights.values()) != 100:
            raise invalid("weights", f"must sum to 100, got {sum(weights.values())}")
        full = {name: 0 for name in sorted(known_set)}
        full.update(weights)
        names = [name for name in sorted(full) if full[name] > 0]
        cumulative, total = [], 0
        for name in names:
            total += full[name]
            cumulative.append(total)
        self._weights, self._names, self._cumulative = full, names, cumulative
        self.sticky = sticky

    def add(self, name: str) -> None:
        """A newly loaded version starts dark (weight 0), or takes all traffic if first."""
        if name in self._weights:
            return
        if not self._names:
            self.set({name: 100}, sticky=self.sticky, known=[*self._weights, name])
        else:
            self._weights[name] = 0

    def remove(self, name: str) -> None:
        if self._weights.get(name, 0) > 0:
            raise ServiceError(
                Status.FAILED_PRECONDITION,
                f"version {name!r} still has {self._weights[name]}% of the traffic; "
                "move its weight to other versions first (PUT /admin/v1/traffic)",
            )
        self._weights.pop(name, None)

    def choose(self, user_id: str) -> str:
        if not self._names:
            raise ServiceError(Status.UNAVAILABLE, "no model version is receiving traffic")
        if self.sticky and user_id:
            digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest, "big") % 100
        else:
            bucket = self._random.randrange(100)
        for name, upper in zip(self._names, self._cumulative, strict=True):
            if bucket < upper:
                return name
        return self._names[-1]
