"""The dynamic batcher: batches what queued, never waits when idle, sheds, drains."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.scoring.batcher import BatchStats, DynamicBatcher, monotonic_deadline


class Doubler:
    """Doubles numbers; a gate lets a test hold the engine thread to build a queue.

    A lone request on an idle batcher runs on the event loop, so tests that hold the
    engine start with two requests, which go to the engine thread together.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: Sequence[int]) -> list[int]:
        self.gate.wait(5)
        self.batches.append(list(batch))
        if any(x < 0 for x in batch):
            raise ValueError("negative input")
        return [2 * x for x in batch]


async def _until(condition: Callable[[], bool], deadline_s: float = 10) -> None:
    """Waits until ``condition`` holds (a loaded machine runs threads late), at most
    ``deadline_s``."""
    async with asyncio.timeout(deadline_s):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
def executor() -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown(wait=False)


async def test_lone_request_is_not_held_back_by_the_delay(executor) -> None:
    engine = Doubler()
    # An hour of batch delay: a lone request must still be answered at once.
    batcher = DynamicBatcher(engine, executor=executor, max_batch_delay_s=3600.0)
    batcher.start()
    assert await asyncio.wait_for(batcher.submit(21), 5) == 42
    assert engine.batches == [[21]]
    await batcher.drain()


async def test_requests_queued_behind_a_busy_engine_share_a_batch(executor) -> None:
    engine = Doubler()
    sizes: list[int] = []
    batcher = DynamicBatcher(
        engine, executor=executor, max_batch_size=8, stats=BatchStats(on_batch=sizes.append)
    )
    batcher.start()
    engine.gate.clear()
    first = [asyncio.ensure_future(batcher.submit(x)) for x in (0, 100)]
    await _until(lambda: sizes == [2])  # the engine thread now holds requests 0 and 100
    rest = [asyncio.ensure_future(batcher.submit(x)) for x in range(1, 21)]
    await _until(lambda: batcher.depth == 20)  # all queued behind the busy engine
    engine.gate.set()
    assert await asyncio.gather(*first) == [0, 200]
    assert await asyncio.gather(*rest) == [2 * x for x in range(1, 21)]
    assert sizes == [2, 8, 8, 4]
    await batcher.drain()


async def test_a_full_queue_sheds_with_resource_exhausted(executor) -> None:
    engine = Doubler()
    batcher = DynamicBatcher(engine, executor=executor, max_batch_size=2, max_queue=3)
    batcher.start()
    engine.gate.clear()
    held = asyncio.gather(batcher.submit(1), batcher.submit(1))
    await asyncio.sleep(0.05)
    queued = [asyncio.ensure_future(batcher.submit(x)) for x in (2, 3, 4)]
    await asyncio.sleep(0)
    with pytest.raises(ServiceError) as shed:
        await batcher.submit(5)
    assert shed.value.status is Status.RESOURCE_EXHAUSTED
    engine.gate.set()
    assert await held == [2, 2] and await asyncio.gather(*queued) == [4, 6, 8]
    await batcher.drain()


async def test_expired_and_cancelled_requests_never_reach_the_engine(executor) -> None:
    engine = Doubler()
    batcher = DynamicBatcher(engine, executor=executor)
    batcher.start()
    engine.gate.clear()
    held = asyncio.gather(batcher.submit(1), batcher.submit(1))
    await asyncio.sleep(0.05)
    late = asyncio.ensure_future(batcher.submit(2, monotonic_deadline(0.01)))
    gone = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0.05)
    gone.cancel()
    engine.gate.set()
    assert await held == [2, 2]
    with pytest.raises(ServiceError) as expired:
        await late
    assert expired.value.status is Status.DEADLINE_EXCEEDED
    await batcher.drain()
    assert engine.batches == [[1, 1]]


async def test_an_engine_error_fails_only_the_request_that_caused_it(executor) -> None:
    engine = Doubler()
    batcher = DynamicBatcher(engine, executor=executor, max_batch_size=8)
    batcher.start()
    engine.gate.clear()
    held = asyncio.gather(batcher.submit(1), batcher.submit(1))
    await asyncio.sleep(0.05)
    batch = [asyncio.ensure_future(batcher.submit(x)) for x in (2, -1, 3)]
    await asyncio.sleep(0.05)
    engine.gate.set()
    assert await held == [2, 2]
    outcomes = await asyncio.gather(*batch, return_exceptions=True)
    assert outcomes[0] == 4 and outcomes[2] == 6
    assert isinstance(outcomes[1], ValueError)
    assert await batcher.submit(4) == 8
    await batcher.drain()


async def test_drain_answers_everything_accepted_then_refuses(executor) -> None:
    engine = Doubler()
    batcher = DynamicBatcher(engine, executor=executor, max_batch_size=4)
    batcher.start()
    engine.gate.clear()
    accepted = [asyncio.ensure_future(batcher.submit(x)) for x in range(10)]
    await asyncio.sleep(0.05)
    draining = asyncio.ensure_future(batcher.drain())
    await asyncio.sleep(0.05)
    with pytest.raises(ServiceError) as refused:
        await batcher.submit(99)
    assert refused.value.status is Status.UNAVAILABLE
    engine.gate.set()
    await draining
    assert [f.result() for f in accepted] == [2 * x for x in range(10)]


class Rendezvous:
    """An engine whose batches only finish when two of them run at the same time."""

    def __init__(self) -> None:
        self.meet = threading.Barrier(2, timeout=5)
        self.threads: list[str] = []

    def __call__(self, batch: Sequence[int]) -> list[int]:
        self.threads.append(threading.current_thread().name)
        self.meet.wait()  # BrokenBarrierError (a failed request) unless a second batch runs
        return [2 * x for x in batch]


async def test_concurrency_runs_one_batch_per_worker_at_once() -> None:
    engine = Rendezvous()
    pool = ThreadPoolExecutor(2, thread_name_prefix="worker")
    batcher = DynamicBatcher(engine, executor=pool, max_batch_size=2, concurrency=2)
    # Queued before the consumer starts: two batches of two, which must run side by side.
    answers = [asyncio.ensure_future(batcher.submit(x)) for x in range(4)]
    batcher.start()
    assert await asyncio.wait_for(asyncio.gather(*answers), 10) == [0, 2, 4, 6]
    assert len(set(engine.threads)) == 2
    await batcher.drain()
    pool.shutdown()


async def test_drain_waits_for_every_batch_in_flight() -> None:
    engine = Doubler()
    pool = ThreadPoolExecutor(2)
    batcher = DynamicBatcher(engine, executor=pool, max_batch_size=2, concurrency=2)
    engine.gate.clear()
    answers = [asyncio.ensure_future(batcher.submit(x)) for x in range(4)]
    batcher.start()
    await asyncio.sleep(0.05)
    drained = asyncio.ensure_future(batcher.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()  # both workers are still held
    engine.gate.set()
    await asyncio.wait_for(drained, 5)
    assert [a.result() for a in answers] == [0, 2, 4, 6]
    pool.shutdown()


async def test_a_lone_request_after_a_busy_spell_goes_to_a_worker() -> None:
    """Only a server that was idle answers a lone request on the event loop; right after
    a batch with company, the loop stays free to take requests in."""
    loop_thread = threading.current_thread().name
    seen: list[str] = []

    def engine(batch: Sequence[int]) -> list[int]:
        seen.append(threading.current_thread().name)
        return list(batch)

    pool = ThreadPoolExecutor(2, thread_name_prefix="worker")
    batcher = DynamicBatcher(engine, executor=pool, max_batch_size=8, concurrency=2)
    burst = [asyncio.ensure_future(batcher.submit(x)) for x in range(3)]
    batcher.start()
    await asyncio.gather(*burst)
    await batcher.submit(7)  # lone, but the previous batch had company: a worker
    await batcher.submit(8)  # lone after lone: the loop itself
    assert seen[0].startswith("worker") and seen[1].startswith("worker")
    assert seen[2] == loop_thread
    await batcher.drain()
    pool.shutdown()


async def test_inline_lone_off_sends_every_request_to_a_worker() -> None:
    seen: list[str] = []

    def engine(batch: Sequence[int]) -> list[int]:
        seen.append(threading.current_thread().name)
        return list(batch)

    pool = ThreadPoolExecutor(1, thread_name_prefix="worker")
    batcher = DynamicBatcher(engine, executor=pool, inline_lone=False)
    batcher.start()
    assert [await batcher.submit(x) for x in range(3)] == [0, 1, 2]
    assert len(seen) == 3 and all(name.startswith("worker") for name in seen)
    await batcher.drain()
    pool.shutdown()


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        DynamicBatcher(list, executor=ThreadPoolExecutor(1), concurrency=0)
