"""The load generator's session order: every user's held-out items, in order, interleaved."""

from __future__ import annotations

import itertools

from recops_runtime.tools.loadtest import _session_cuts
from recops_runtime.tools.sequences import UserSequence


def test_sessions_reach_each_held_out_item_once_per_pass_in_order() -> None:
    users = [
        UserSequence("a", ("1", "2", "3", "4")),
        UserSequence("b", ("5", "6")),
        UserSequence("c", ("7", "8", "9")),
    ]
    one_pass = list(itertools.islice(_session_cuts(users, holdout=2), 5))
    # Oldest held-out item of every user first ("b" has one item before its first cut).
    assert one_pass == [(0, 2), (2, 1), (0, 3), (1, 1), (2, 2)]
    again = list(itertools.islice(_session_cuts(users, holdout=2), 10))
    assert again[5:] == one_pass  # then over again
    # Two client processes share the users out, each reaching its own users' items.
    first = set(itertools.islice(_session_cuts(users, 2, share=0, shares=2), 4))
    second = set(itertools.islice(_session_cuts(users, 2, share=1, shares=2), 1))
    assert first == {(0, 2), (0, 3), (2, 1), (2, 2)} and second == {(1, 1)}
