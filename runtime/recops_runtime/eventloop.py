"""How the service and the load generator run: their event loop and their heap.

uvloop (libuv) makes the futures, callbacks and cross-thread wake-ups of every request
cheaper than asyncio's pure-Python loop; the service falls back to asyncio where uvloop
is not installed (it is optional: Windows has none).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def freeze_heap() -> None:
    """Moves everything alive now out of the garbage collector's reach.

    What a process loads before serving (modules, engines, id maps; a generator's million
    replayed strings) lives as long as it does; left in the heap, every full collection
    walks it and pauses all requests in flight, which shows up in the latency tail. Call
    it once loading is done, in a process of one's own.
    """
    gc.collect()
    gc.freeze()
