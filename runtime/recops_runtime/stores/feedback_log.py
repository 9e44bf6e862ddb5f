"""A durable, rotated log of served recommendations and feedback events (JSON lines).

Each line is one record of the shared schema, ``recops_contracts.feedback``
(``RecommendationRecord`` for an answered Recommend call, ``FeedbackRecord`` for a Feedback
call); the trainer reads the sealed segments of such folders as new training data
(``dataset.feedbackLog``), and :func:`read_feedback_log` reads one folder back here, for
tools and tests.

Durability: records are buffered and appended in batches (every ``flush_every`` records
or ``flush_interval_s`` seconds) to ``<segment>.jsonl.part`` with an fsync per batch; a
segment is sealed by renaming it to ``<segment>.jsonl`` once it reaches ``rotate_bytes``
or ``rotate_interval_s``, and on close. Readers only read sealed segments. After a
crash, opening the log again truncates any ``.part`` file to its last complete line and
seals it, so a crash loses at most the batch being written and never leaves a torn line.
One directory belongs to one server process, which holds an exclusive lock on its
``.lock`` file while it runs; a second server given the same directory (two replicas on
one shared volume) writes to a folder of its own inside it instead, with a warning, so
neither seals or overwrites the other's segments. Readers walk the tree, so both are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from recops_contracts.feedback import PART_SUFFIX, SEALED_SUFFIX

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


class FeedbackLog:
    def __init__(
        self,
        directory: Path,
        *,
        flush_every: int = 2_000,
        flush_interval_s: float = 1.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_interval_s: float = 3600.0,
    ) -> None:
        self.directory = directory
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self.rotate_bytes = rotate_bytes
        self.rotate_interval_s = rotate_interval_s
        self._buffer: list[str] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="feedback-log")
        self._lock = asyncio.Lock()
        self._part: Path | None = None
        self._part_opened = 0.0
        self._part_bytes = 0
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._owner: int | None = None  # the locked .lock file's descriptor

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._owner = _lock(self.directory)
        if self._owner is None:
            shared = self.directory
            own = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
            self.directory = shared / own
            self.directory.mkdir()
            self._owner = _lock(self.directory)
            log.warning(
                "feedback log folder %s is in use by another server; writing to %s instead",
                shared,
                self.directory,
            )
        recovered = recover(self.directory)
        if recovered:
            log.warning("sealed %d feedback segment(s) left by an earlier crash", recovered)
        self._task = asyncio.get_running_loop().create_task(self._flush_periodically())

    def append(self, record: Mapping[str, object]) -> None:
        self._buffer.append(json.dumps(record, separators=(",", ":")))
        if len(self._buffer) >= self.flush_every:
            task = asyncio.get_running_loop().create_task(self.flush())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                # An idle log seals its aged segment too: training reads the last events
                # without waiting for a next one.
                if self._part is not None and self._aged():
                    await asyncio.get_running_loop().run_in_executor(self._executor, self._seal)
                return
            lines, self._buffer = self._buffer, []
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, lines)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await asyncio.gather(*self._pending)
        await self.flush()
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._seal)
        self._executor.shutdown(wait=True)
        if self._owner is not None:
            os.close(self._owner)  # releases the lock
            self._owner = None

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except OSError:
                log.exception("could not write the feedback log; will retry")

    def _write(self, lines: list[str]) -> None:
        if self._part is not None and (self._part_bytes >= self.rotate_bytes or self._aged()):
            self._seal()
        if self._part is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            self._seq += 1
            self._part = (
                self.directory / f"feedback-{stamp}-{os.getpid()}-{self._seq:05d}{PART_SUFFIX}"
            )
            self._part_opened = time.time()
            self._part_bytes = 0
        data = ("\n".join(lines) + "\n").encode()
        # One write and one fsync per batch: a crash tears at most this batch's tail,
        # which recovery cuts back to the last complete line.
        with self._part.open("ab") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        self._part_bytes += len(data)

    def _aged(self) -> bool:
        return time.time() - self._part_opened >= self.rotate_interval_s

    def _seal(self) -> None:
        if self._part is None:
            return
        _seal_part(self._part)
        self._part = None


def _seal_part(part: Path) -> bool:
    data = part.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if not complete:
        part.unlink()
        return False
    if len(complete) != len(data):
        with part.open("r+b") as out:
            out.truncate(len(complete))
            out.flush()
            os.fsync(out.fileno())
    part.rename(part.with_name(part.name.removesuffix(PART_SUFFIX) + SEALED_SUFFIX))
    return True


def _lock(directory: Path) -> int | None:
    """An exclusive lock on the folder's ``.lock`` file, or None when another holds it."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def recover(directory: Path) -> int:
    """Seals segments an earlier process left open; returns how many."""
    return sum(_seal_part(part) for part in sorted(directory.glob(f"*{PART_SUFFIX}")))


def read_feedback_log(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record of the sealed segments in the folder's tree (a server of several
    processes writes one folder each inside it), oldest segment first."""
    segments = directory.rglob(f"*{SEALED_SUFFIX}")
    for segment in sorted(segments, key=lambda path: (path.name, str(path))):
        with segment.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
