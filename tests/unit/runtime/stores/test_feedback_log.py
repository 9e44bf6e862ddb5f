"""The feedback log: readable segments, rotation, and recovery after a crash."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from recops_runtime.stores.feedback_log import FeedbackLog, read_feedback_log, recover


async def test_records_come_back_in_order_across_rotations(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path, flush_every=1_000, rotate_bytes=200)
    await log.start()
    for i in range(55):
        log.append({"kind": "feedback", "n": i})
        if i % 10 == 9:
            await log.flush()
    await log.close()
    assert [r["n"] for r in read_feedback_log(tmp_path)] == list(range(55))
    assert len(list(tmp_path.glob("*.jsonl"))) > 1
    assert not list(tmp_path.glob("*.part"))


async def test_unsealed_records_stay_invisible_until_flushed(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path, flush_every=1_000, flush_interval_s=3600)
    await log.start()
    log.append({"n": 1})
    assert list(read_feedback_log(tmp_path)) == []
    await log.close()
    assert list(read_feedback_log(tmp_path)) == [{"n": 1}]


async def test_an_idle_log_seals_its_aged_segment(tmp_path: Path) -> None:
    # No event follows the last one: the segment is sealed by age alone, while running.
    log = FeedbackLog(tmp_path, flush_every=1_000, flush_interval_s=3600, rotate_interval_s=0.05)
    await log.start()
    log.append({"n": 1})
    await log.flush()
    assert list(read_feedback_log(tmp_path)) == []
    time.sleep(0.1)
    await log.flush()  # what the periodic flush does with nothing buffered
    assert list(read_feedback_log(tmp_path)) == [{"n": 1}]
    assert not list(tmp_path.glob("*.part"))
    await log.close()


async def test_a_killed_writer_loses_at_most_its_last_batch(tmp_path: Path) -> None:
    # A real process writes flushed batches, then dies mid-write without closing.
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from recops_runtime.stores.feedback_log import FeedbackLog

        async def main():
            log = FeedbackLog(Path({str(tmp_path)!r}), flush_every=100, flush_interval_s=3600)
            await log.start()
            for i in range(250):
                log.append({{"n": i}})
                if i % 100 == 99:
                    await log.flush()
            await log.flush()
            part = next(Path({str(tmp_path)!r}).glob("*.part"))
            with part.open("ab") as out:  # the torn tail of a batch being written
                out.write(b'{{"n": 250, "trunc')
            os._exit(9)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert done.returncode == 9
    assert recover(tmp_path) == 1
    records = list(read_feedback_log(tmp_path))
    assert [r["n"] for r in records] == list(range(250))
    for segment in tmp_path.glob("*.jsonl"):
        for line in segment.read_text().splitlines():
            json.loads(line)
    # Sealed segments only (and the lock file, which a dead process no longer holds).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == sorted(
        p.name for p in tmp_path.glob("*.jsonl")
    )
    restarted = FeedbackLog(tmp_path)
    await restarted.start()
    assert restarted.directory == tmp_path  # the kill released the folder
    await restarted.close()


async def test_two_servers_given_one_folder_never_touch_each_others_segments(
    tmp_path: Path,
) -> None:
    first = FeedbackLog(tmp_path, flush_every=1_000, rotate_bytes=100)
    second = FeedbackLog(tmp_path, flush_every=1_000, rotate_bytes=100)
    await first.start()
    await second.start()  # the folder is locked: it writes to one of its own inside
    assert first.directory == tmp_path and second.directory.parent == tmp_path
    for n in range(20):
        first.append({"server": 1, "n": n})
        second.append({"server": 2, "n": n})
        await first.flush()
        await second.flush()
    await first.close()
    await second.close()
    # The shared folder's tree (what training reads) holds both servers' records, each
    # server's in order.
    shared = list(read_feedback_log(tmp_path))
    assert [r["n"] for r in shared if r["server"] == 1] == list(range(20))
    assert len(shared) == 40
    assert [r["n"] for r in read_feedback_log(second.directory)] == list(range(20))
    assert {r["server"] for r in read_feedback_log(second.directory)} == {2}
    # Closed, the folder is free again: a restarted server writes to it directly.
    again = FeedbackLog(tmp_path)
    await again.start()
    assert again.directory == tmp_path
    await again.close()
