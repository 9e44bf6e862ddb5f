"""The weighted, optionally sticky traffic split."""

from __future__ import annotations

import collections

import pytest

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.registry.traffic import TrafficSplit


def test_weights_split_traffic_in_proportion() -> None:
    split = TrafficSplit({"v1": 90, "v2": 10})
    counts = collections.Counter(split.choose("") for _ in range(20_000))
    assert 1_600 < counts["v2"] < 2_400


def test_zero_weight_versions_get_nothing() -> None:
    split = TrafficSplit({"v1": 100})
    split.add("v2")
    assert split.weights == {"v1": 100, "v2": 0}
    assert {split.choose(str(u)) for u in range(500)} == {"v1"}


def test_sticky_users_keep_their_version_and_few_move_when_weight_shifts() -> None:
    split = TrafficSplit({"v1": 90, "v2": 10}, sticky=True)
    users = [f"user-{u}" for u in range(2_000)]
    before = {u: split.choose(u) for u in users}
    assert all(split.choose(u) == before[u] for u in users)
    split.set({"v1": 80, "v2": 20}, sticky=True, known=["v1", "v2"])
    after = {u: split.choose(u) for u in users}
    moved = [u for u in users if before[u] != after[u]]
    # Only users in the buckets that changed hands move, and only towards v2.
    assert all(before[u] == "v1" and after[u] == "v2" for u in moved)
    assert 100 < len(moved) < 300


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"v1": 60, "v3": 40}, "weights.v3"),
        ({"v1": 60, "v2": 30}, "weights"),
        ({"v1": 101, "v2": -1}, "weights.v1"),
        ({"v1": True, "v2": 99}, "weights.v1"),
    ],
)
def test_invalid_weights_name_the_field(weights: dict, field: str) -> None:
    split = TrafficSplit({"v1": 100})
    with pytest.raises(ServiceError) as caught:
        split.set(weights, sticky=False, known=["v1", "v2"])
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert caught.value.message.startswith(field)
    assert split.weights == {"v1": 100}


def test_a_version_with_traffic_cannot_be_removed() -> None:
    split = TrafficSplit({"v1": 50, "v2": 50})
    with pytest.raises(ServiceError) as caught:
        split.remove("v2")
    assert caught.value.status is Status.FAILED_PRECONDITION
    split.set({"v1": 100}, sticky=False, known=["v1", "v2"])
    split.remove("v2")
    assert split.weights == {"v1": 100}
