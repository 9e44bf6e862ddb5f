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

import time
from pathlib import Path
from typing import Any

from recops_cli.quickstart.facts import LoopFacts
from recops_cli.quickstart.observe import read_series, wait_for_drift
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
from recops_cli.quickstart.stages import Quickstart
from recops_cli.quickstart.trend import TREND_FROM_RANK, TREND_TAIL, write_shifted_replay
from recops_contracts.drift import DriftThresholds
from recops_contracts.training_summary import TrainingSummary


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
    return {(str(u), str(i)) for report in traffic.reports() for u, i in report.watched}


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
    stable_run: TrainingSummary,
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
        facts.triggered = wait_for_drift(prometheus.url, stable, qs.progress("waiting for drift"))
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
        parent = Path(stable_run.model_dir).parent / "snapshot"
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
        v3 = facts.training = qs.train("v3", data, qs.size.v2_epochs, feedback=workdir / "feedback")
        facts.mark("trained")
    candidate = facts.candidate = str(v3.model_version)
    if not qs.announce_gate(v3):
        qs.console.print("[yellow]The offline gate rejected the retrained version.[/yellow]")
        facts.series = read_series(prometheus.url, start, time.time())
        return 1
    with qs.stage(f"compile v{candidate} engines"):
        engines = qs.compile(candidate, Path(v3.model_dir))
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
        qs.make_champion(v3)
    facts.series = read_series(prometheus.url, start, time.time())
    return 0
