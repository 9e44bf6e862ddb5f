"""The event loop the service and the load generator run on.

uvloop (libuv) makes the futures, callbacks and cross-thread wake-ups of every request
cheaper than asyncio's pure-Python loop; the service falls back to asyncio where uvloop
is not installed (it is optional: Windows has none).
"""

from __future__ import annotations

import asyncio
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
