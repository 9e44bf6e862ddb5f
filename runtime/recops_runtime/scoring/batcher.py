"""Dynamic batching in front of one engine.

Requests queue up; one consumer takes everything queued (up to ``max_batch_size``) and
runs it as one engine call in a worker thread, so the event loop keeps accepting and
decoding requests while the engine computes. Up to ``concurrency`` batches run at once
(one per engine worker): on CPUs a small transformer scores a batch of one at less CPU
per user than a padded batch of sixteen, so two workers each taking what queued beat one
worker taking bigger batches. A lone request on an idle server runs on the event loop
itself: nothing else is waiting, and the two thread hand-offs cost more CPU and latency
than they save (measured with `recops loadtest` at concurrency 1). ``inline_lone=False``
turns that off, for engines whose single call is too long to hold the loop.

The batcher never waits on an idle queue: a lone request goes straight to the engine (a
fixed wait would set the latency floor at low load). Under load, batches form by
themselves from what queued during the previous engine call; ``max_batch_delay_s``
additionally lets a batch wait that long for more requests, but only when requests were
already backed up behind the previous batch.

The queue is bounded: past ``max_queue`` waiting requests, new ones are shed with
RESOURCE_EXHAUSTED at once rather than queueing into a timeout. Requests whose client
went away or whose deadline passed are dropped before they reach the engine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from recops_runtime.api.errors import ServiceError, Status

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class _Job(Generic[In, Out]):
    payload: In
    future: asyncio.Future[Out]
    deadline: float | None  # event-loop time


@dataclass
class BatchStats:
    """What the batcher reports after each engine call (for metrics)."""

    on_batch: Callable[[int], None] = field(default=lambda size: None)
    on_depth: Callable[[int], None] = field(default=lambda depth: None)


class DynamicBatcher(Generic[In, Out]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        *,
        executor: Executor,
        max_batch_size: int = 32,
        max_batch_delay_s: float = 0.0,
        max_queue: int = 1024,
        concurrency: int = 1,
        inline_lone: bool = True,
        stats: BatchStats | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._run_batch = run_batch
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_batch_delay_s = max(0.0, max_batch_delay_s)
        self.max_queue = max_queue
        self.concurrency = concurrency
        self.inline_lone = inline_lone
        self._last_size = 1
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._stats = stats or BatchStats()
        self._queue: collections.deque[_Job[In, Out]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume())

    async def submit(self, payload: In, deadline: float | None = None) -> Out:
        """Queues one request and waits for its result."""
        if self._closed:
            raise ServiceError(Status.UNAVAILABLE, "this model version is shutting down")
        if len(self._queue) >= self.max_queue:
            raise ServiceError(
                Status.RESOURCE_EXHAUSTED,
                f"server overloaded: {self.max_queue} requests already queued; retry later",
            )
        loop = asyncio.get_running_loop()
        job: _Job[In, Out] = _Job(payload, loop.create_future(), deadline)
        self._queue.append(job)
        self._idle.clear()
        self._wakeup.set()
        return await job.future

    async def drain(self) -> None:
        """Stops taking requests and waits until every accepted one is answered."""
        self._closed = True
        await self._idle.wait()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if not self._running:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # A batch is taken only once a worker is free: meanwhile requests keep queueing,
            # and the next batch is whatever queued (bounded by max_batch_size).
            await self._slots.acquire()
            backed_up = len(self._queue) > 1
            if backed_up and self.max_batch_delay_s > 0 and len(self._queue) < self.max_batch_size:
                await self._wait_for_more(loop.time() + self.max_batch_delay_s)
            batch = self._take(loop.time())
            self._stats.on_depth(len(self._queue))
            if not batch:
                self._slots.release()
                continue
            self._stats.on_batch(len(batch))
            # A lone request on an idle server, which also saw only lone requests before:
            # two thread hand-offs would cost more than they let the loop do meanwhile, so
            # it runs right here. Under load (the last batch had company) it never does:
            # the loop must keep accepting requests while the engine computes.
            inline = (
                self.inline_lone
                and len(batch) == 1
                and self._last_size == 1
                and not self._queue
                and not self._running
            )
            self._last_size = len(batch)
            if inline or self.concurrency == 1:
                try:
                    await self._run(batch, inline=inline)
                finally:
                    self._slots.release()
                continue
            task = loop.create_task(self._run_and_release(batch))
            self._running.add(task)
            task.add_done_callback(self._batch_done)

    async def _run_and_release(self, batch: list[_Job[In, Out]]) -> None:
        try:
            await self._run(batch)
        finally:
            self._slots.release()

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not self._running and not self._queue:
            self._idle.set()

    async def _run(self, batch: list[_Job[In, Out]], *, inline: bool = False) -> None:
        loop = asyncio.get_running_loop()
        try:
            if inline:
                results = self._run_batch([batch[0].payload])
            else:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [job.payload for job in batch]
                )
        except Exception as exc:
            if len(batch) > 1:
                # One bad request must not fail its neighbours: retry them one by one.
                for job in batch:
                    if not job.future.done():
                        await self._run([job])
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def _wait_for_more(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while len(self._queue) < self.max_batch_size:
            remaining = until - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take(self, now: float) -> list[_Job[In, Out]]:
        batch: list[_Job[In, Out]] = []
        while self._queue and len(batch) < self.max_batch_size:
            job = self._queue.popleft()
            if job.future.done():  # cancelled by the client or its deadline
                continue
            if job.deadline is not None and job.deadline <= now:
                job.future.set_exception(
                    ServiceError(Status.DEADLINE_EXCEEDED, "deadline passed while queued")
                )
                continue
            batch.append(job)
        return batch


def monotonic_deadline(timeout_s: float | None) -> float | None:
    """An event-loop deadline from a relative timeout (None: no deadline)."""
    if timeout_s is None:
        return None
    return asyncio.get_running_loop().time() + max(0.0, timeout_s)
