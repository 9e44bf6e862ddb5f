"""Fixtures shared by the integration tiers that talk to an emulated Kubernetes API.

The emulator and the test's own client are module-scoped: Kopf operators started by a
module keep watching one API server until the module ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import kmock
import pytest
import pytest_asyncio

from recops_operator.clients.kubernetes import KubeClient, KubeConnection
from recops_testkit.emulator import ApiServerEmulator

T = TypeVar("T")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServerEmulator]:
    async with ApiServerEmulator() as emulator, kmock.Server(emulator):
        yield emulator


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kube(api: ApiServerEmulator) -> AsyncIterator[KubeClient]:
    """The test's own client (what kubectl and the other controllers would do)."""
    async with KubeClient(KubeConnection(server=str(api.url))) as client:
        yield client


async def _eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@pytest.fixture(scope="session")
def eventually() -> Callable[..., Awaitable[Any]]:
    """``await eventually(probe, what, timeout=30)``: poll until ``probe()`` is truthy."""
    return _eventually
