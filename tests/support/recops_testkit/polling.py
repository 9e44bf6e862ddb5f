"""Waiting on a condition with a deadline, never on a fixed sleep: a loaded machine
scrapes, schedules and answers late, and a fixed sleep then reads a value too early."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def read_until(
    read: Callable[[], Awaitable[T]],
    reached: Callable[[T], bool],
    deadline_s: float = 30,
    every_s: float = 0.25,
) -> T:
    """Reads until ``reached`` holds or ``deadline_s`` passes; returns the last reading,
    for the caller to assert on (a wrong value then fails with what was read)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while True:
        value = await read()
        if reached(value) or loop.time() >= until:
            return value
        await asyncio.sleep(every_s)
