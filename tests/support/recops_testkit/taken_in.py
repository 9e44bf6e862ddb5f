"""How many requests a running `recops serve` has taken in, read from its metrics port.

A drain test must send SIGTERM only once the server holds every request it sent: then
each one that is not answered OK was dropped by the drain, not turned away at the door.
Taken in = waiting in a batcher queue (the queue-depth gauge) or answered (the requests
counter); a request inside the engine shows in neither, hence the caller's ``in_engine``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from recops_contracts import metrics as m
from recops_testkit.serve_helpers import metric


async def queued_and_answered(metrics_port: int) -> tuple[float, float]:
    """(requests queued for an engine, requests answered) in one scrape."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    return metric(text, m.QUEUE_DEPTH), metric(text, m.total(m.REQUESTS))


async def wait_until_taken_in(
    metrics_port: int,
    sent: int,
    in_engine: int,
    settled: Callable[[], int] = lambda: 0,
    deadline_s: float = 60,
) -> float:
    """Waits until the server has taken in all ``sent`` requests but for at most
    ``in_engine`` being scored; returns the queue depth then. ``settled``: requests the
    client has an outcome for (one the client gave up on never counts on the server)."""
    async with asyncio.timeout(deadline_s):
        while True:
            queued, answered = await queued_and_answered(metrics_port)
            if queued + max(answered, settled()) + in_engine >= sent:
                return queued
            await asyncio.sleep(0.002)


def _unread_bytes(port: int) -> int:
    """Bytes that arrived on loopback connections to ``port`` and wait unread in the kernel
    (the rx_queue column of /proc/net/tcp: Linux)."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with Path(table).open() as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    total += int(fields[4].split(":")[1], 16)
    return total


async def wait_until_sent(port: int, deadline_s: float = 30) -> int:
    """Waits, while the server on ``port`` is paused (SIGSTOP), until its unread bytes stop
    growing: the client has written the whole burst. Returns those bytes."""
    async with asyncio.timeout(deadline_s):
        seen, steady = -1, 0
        while steady < 5:
            await asyncio.sleep(0.01)
            now = _unread_bytes(port)
            steady = steady + 1 if now == seen and now > 0 else 0
            seen = now
        return seen


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a `recops serve` of several processes is a supervisor
    with workers: they all hold the gRPC port)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            found.extend(int(child) for child in children)
    return found


@contextmanager
def paused(pid: int) -> Iterator[list[int]]:
    """Pauses ``pid`` and its descendants for the block (yields their ids)."""
    pids = process_tree(pid)
    for each in pids:
        os.kill(each, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for each in pids:
            os.kill(each, signal.SIGCONT)
