"""The shift of taste the loop simulates: a few titles from the catalogue's middle become
what many users watch next (a genre coming into fashion), written as replay files."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from recops_cli.quickstart.processes import StageError

# The trend: a few titles from the catalogue's middle (outside the drift statistics' top
# items, so their rise shows as a shift of popularity) that many users go on to watch, each
# ``TREND_TAIL`` of them, after everything they watched before. Few titles and many
# viewers make them popular in the new data, which even a briefly trained model picks up.
TREND_ITEMS = 5
TREND_FROM_RANK = 300
TREND_TAIL = 5
# The trend's users are adopters, whose watches are logged and become training data, or
# followers (a third of them, up to this many), who meet it later, in the canary, unseen
# by any version.
FOLLOWERS = 250


@dataclass(frozen=True)
class Trend:
    """The shifted replay files and what they hold."""

    adopters: Path  # replayed while the drift builds up and the feedback is collected
    followers: Path  # replayed during the canary
    items: list[str]
    users: int
    rows_added: int
    adopter_rows: int  # the adopters' trend items: one pass of their sessions
    follower_users: int


def write_shifted_replay(source: Path, folder: Path, seed: int = 11) -> Trend:
    """Two u.data files (user, item, rating, time; tab-separated), of the adopters and of
    the followers of one trend, each user going on to watch ``TREND_TAIL`` of its titles
    after their own last one."""
    rows = [line.split("\t") for line in source.read_text(encoding="utf-8").splitlines() if line]
    popularity = Counter(row[1] for row in rows)
    ranked = [item for item, _ in popularity.most_common()]
    if len(ranked) < TREND_FROM_RANK + TREND_ITEMS or TREND_TAIL > TREND_ITEMS:
        raise StageError(f"{source}: too few titles for a trend ({len(ranked)})")
    trend = ranked[TREND_FROM_RANK : TREND_FROM_RANK + TREND_ITEMS]
    seen: dict[str, set[str]] = {}
    last: dict[str, int] = {}
    for user, item, _, ts in rows:
        seen.setdefault(user, set()).add(item)
        last[user] = max(last.get(user, 0), int(ts))
    rng = random.Random(seed)
    # The trend's users never watched any of its titles: each watches all of them, so a
    # session's every request is for a title new to its user.
    users = [user for user in sorted(seen, key=int) if not seen[user] & set(trend)]
    rng.shuffle(users)
    followers = set(users[: min(FOLLOWERS, len(users) // 3)])
    adopters = set(users) - followers
    added: dict[str, list[str]] = {}
    for user in users:
        for step, item in enumerate(rng.sample(trend, TREND_TAIL), start=1):
            added.setdefault(user, []).append(f"{user}\t{item}\t5\t{last[user] + step}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, group in (("adopters", adopters), ("followers", followers)):
        lines = ["\t".join(row) for row in rows if row[0] in group]
        lines += [line for user in sorted(group, key=int) for line in added.get(user, [])]
        path = folder / f"trend-{name}-u.data"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    sessions = sum(len(added.get(user, [])) for user in adopters)
    return Trend(
        paths[0],
        paths[1],
        trend,
        len(users),
        sum(map(len, added.values())),
        sessions,
        len(followers),
    )
