"""`recops quickstart --loop`: the continuous-training loop, closed on one machine.

After the first rollout the simulated users' taste shifts: a set of titles that sat in the
catalogue's middle becomes what many users watch next (a genre coming into fashion). Then,
each step timed and reported:

1. the stable version's drift statistics, computed by the runtime over windows of
   requests and scraped by a real Prometheus, breach their thresholds for ``consecutive``
   windows in a row (``recops_drift_triggered``);
2. the feedback log becomes a new snapshot, the stable version's training data plus the
   watched titles, with its lineage (`recops data ingest`), counted against what the
   simulated users sent;
3. a new version trains on the same data and feedback (`recops train` with
   ``includeFeedback``, which is what a TrainingRun's job runs) and meets the offline gate;
4. it is compiled and rolled out on the shifted traffic, promoted or rolled back on live
   hit rate, errors and latency.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recops_cli.quickstart.processes import (
    ServingPorts,
    StageError,
    TrafficLoop,
    last_json_object,
    recops_command,
    run_stage,
)
from recops_cli.quickstart.prometheus import Prometheus
from recops_cli.quickstart.settings import SERVING_TARGET
from recops_contracts.drift import DriftThresholds
from recops_contracts.metrics import (
    DRIFT,
    DRIFT_TRIGGERED,
    DRIFT_WINDOWS,
    ONLINE_HITS,
    RECOMMENDATIONS,
    total,
)

if TYPE_CHECKING:
    from recops_cli.quickstart.run import Quickstart

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
DRIFT_TIMEOUT_S = 180.0


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


@dataclass
class LoopFacts:
    """What the loop saw, for the report (``Facts.loop``)."""

    stable: str = ""
    candidate: str = ""
    trend: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, float]] = field(default_factory=list)  # (what, unix time)
    triggered: dict[str, float] = field(default_factory=dict)  # statistic -> value
    detection_s: float | None = None
    ingest: dict[str, Any] = field(default_factory=dict)
    watched_pairs: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)
    # statistic or "hit_rate" -> version -> [(unix time, value)]
    series: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    def mark(self, what: str) -> None:
        self.events.append((what, time.time()))


def wait_for_drift(
    prometheus: Prometheus, version: str, on_wait: Callable[[str], None]
) -> dict[str, float]:
    """Block until a drift statistic of ``version`` has triggered; returns the triggered
    statistics with their last window's value."""
    deadline = time.monotonic() + DRIFT_TIMEOUT_S
    while time.monotonic() < deadline:
        fired = [
            s["metric"]["statistic"]
            for s in prometheus.query(f'{DRIFT_TRIGGERED}{{version="{version}"}} == 1')
        ]
        if fired:
            values = {
                s["metric"]["statistic"]: float(s["value"][1])
                for s in prometheus.query(f'{DRIFT}{{version="{version}"}}')
            }
            return {name: values.get(name, float("nan")) for name in sorted(fired)}
        windows = prometheus.query(f'{total(DRIFT_WINDOWS)}{{version="{version}"}}')
        judged = int(float(windows[0]["value"][1])) if windows else 0
        on_wait(f"{judged} windows judged, no statistic triggered yet")
        time.sleep(1.0)
    raise StageError(
        f"no drift statistic of version {version} triggered within {DRIFT_TIMEOUT_S:.0f}s "
        "of the shift; see logs/serve.log and recops_drift in Prometheus"
    )


def read_series(prometheus: Prometheus, start: float, end: float) -> dict[str, Any]:
    """Drift statistics and online hit rate per version over the loop, from Prometheus."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for result in prometheus.query_range(DRIFT, start, end):
        statistic = result["metric"]["statistic"]
        series.setdefault(statistic, {})[result["metric"]["version"]] = [
            (float(t), float(v)) for t, v in result["values"]
        ]
    hit_rate = (
        f"sum by (version) (increase({total(ONLINE_HITS)}[10s])) / "
        f"sum by (version) (increase({total(RECOMMENDATIONS)}[10s]))"
    )
    for result in prometheus.query_range(hit_rate, start, end):
        series.setdefault("hit_rate", {})[result["metric"]["version"]] = [
            (float(t), float(v)) for t, v in result["values"] if v not in ("NaN", "+Inf")
        ]
    return series


def ingest(workdir: Path, parent_snapshot: Path, log_path: Path) -> dict[str, Any]:
    """`recops data ingest` of the whole feedback folder; returns the new manifest."""
    out = workdir / "snapshots" / "after-shift"
    _, stdout = run_stage(
        recops_command(
            "data",
            "ingest",
            "--snapshot",
            str(parent_snapshot),
            "--feedback-log",
            str(workdir / "feedback"),
            "--out",
            str(out),
        ),
        log_path,
    )
    return last_json_object(stdout)


def watched_pairs(traffic: TrafficLoop) -> set[tuple[str, str]]:
    """Distinct (user, title) pairs the simulated users sent as watches."""
    return {(str(u), str(i)) for report in traffic.reports() for u, i in report.get("watched", [])}


# The runtime writes its buffer every second (opening a segment) and seals an idle segment
# once it is older than --feedback-rotate-s: no open segment for longer than one write
# period means the buffer is empty and everything is sealed.
QUIET_S = 2.5


def wait_until_sealed(feedback: Path, timeout_s: float = 60.0) -> None:
    """Block until the feedback log has had no open segment for ``QUIET_S``."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S:
        if any(feedback.rglob("*.jsonl.part")):
            quiet_since = time.monotonic()
        if time.monotonic() > deadline:
            raise StageError(f"feedback segments under {feedback} stayed open {timeout_s:.0f}s")
        time.sleep(0.2)


def close_the_loop(
    qs: Quickstart,
    stable: str,
    stable_run: dict[str, Any],
    replay: Path,
    data: Path,
    ports: ServingPorts,
    prometheus: Prometheus,
    traffic: TrafficLoop,
) -> int:
    """The loop's stages after the first rollout; 0 when it closed (the new version was
    promoted, or rightly rolled back), 1 when the gate stopped it."""
    facts = LoopFacts(stable=stable)
    qs.facts.loop = facts
    workdir = qs.workdir
    # The serve command sets the window and the run of windows; the limits are the defaults.
    facts.thresholds = DriftThresholds().limits()
    start = time.time()
    with qs.stage("shift of taste: a trend in the simulated traffic"):
        trend = write_shifted_replay(replay, workdir / "data")
        facts.trend = {
            "titles": trend.items,
            "from_rank": TREND_FROM_RANK,
            "per_user": TREND_TAIL,
            "users": trend.users,
            "followers": trend.follower_users,
            "rows_added": trend.rows_added,
        }
        traffic.stop()
        facts.mark("shift")
        # The adopters' sessions, each in order: a request cuts a user's sequence before
        # each of their trend titles, and the user goes on to watch it, recommended or
        # not. One pass reaches every title of every adopter.
        shifted = qs.traffic(
            trend.adopters,
            ports.grpc,
            "traffic-shifted",
            "--holdout",
            str(TREND_TAIL),
            "--watch",
            "--sessions",
            requests=trend.adopter_rows,
        )
    with qs.stage(f"drift of v{stable} detected (Prometheus)"):
        facts.triggered = wait_for_drift(prometheus, stable, qs.progress("waiting for drift"))
        facts.mark("drift triggered")
        facts.detection_s = round(facts.events[-1][1] - facts.events[-2][1], 1)
    qs.console.print(
        "  triggered: "
        + ", ".join(f"{name} {value:.3f}" for name, value in facts.triggered.items())
    )
    with qs.stage("the adopters' sessions end; ingest their feedback into a new snapshot"):
        # The pass in progress ends by itself, so that its report counts every watch sent.
        shifted.finish()
        wait_until_sealed(workdir / "feedback")
        parent = Path(stable_run["model_dir"]).parent / "snapshot"
        manifest = ingest(workdir, parent, qs.logs / "ingest.log")
        facts.ingest = {"hash": manifest["hash"]} | manifest["lineage"]
        facts.watched_pairs = len(watched_pairs(shifted))
        facts.mark("ingested")
    ingested = facts.ingest["ingested"]
    qs.console.print(
        f"  snapshot {str(manifest['hash'])[:12]} (parent {str(facts.ingest['parent'])[:12]}): "
        f"{ingested['new_interactions']} new interactions from {ingested['feedback']} "
        f"feedback events; the simulated users watched {facts.watched_pairs} new titles"
    )
    with qs.stage("train v3 on the data and its feedback, apply the gate"):
        v3 = qs.train("v3", data, qs.size.v2_epochs, feedback=workdir / "feedback")
        facts.training = {
            "dataset_hash": v3["dataset_hash"],
            "gate": v3.get("gate", {}),
            "model_version": str(v3["model_version"]),
        }
        facts.mark("trained")
    candidate = facts.candidate = str(v3["model_version"])
    gate = v3.get("gate", {})
    qs.console.print(
        f"  version {candidate}: gate says {gate.get('verdict')}: {gate.get('reason')}"
    )
    if gate.get("verdict") != "candidate":
        qs.console.print("[yellow]The offline gate rejected the retrained version.[/yellow]")
        facts.series = read_series(prometheus, start, time.time())
        return 1
    with qs.stage(f"compile v{candidate} engines"):
        engines = qs.compile(candidate, Path(v3["model_dir"]))
    # The followers meet the trend now: neither version has seen their watches.
    qs.traffic(trend.followers, ports.grpc, "traffic-canary", "--holdout", str(TREND_TAIL))
    with qs.stage(f"roll out v{candidate} on the shifted traffic"):
        facts.mark("rollout")
        code, facts.rollout = qs.roll_out(
            stable, candidate, engines[SERVING_TARGET], ports, workdir / "rollout-loop-log.json"
        )
        facts.mark("rolled out")
    qs.announce_rollout(code, facts.rollout, stable, candidate)
    if code == 0:
        qs.set_alias(v3["tracking_uri"], "champion", candidate)
    facts.series = read_series(prometheus, start, time.time())
    return 0
