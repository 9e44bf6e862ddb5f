"""`recops loadtest`: replays held-out user sequences against a running service.

Closed loop (``concurrency`` requests always in flight) or open loop (``rate`` requests
per second on a fixed schedule; latency counts from the scheduled send time, so a slow
server cannot hide its queueing). After each answer a simulated user clicks when the true
next item is among the returned top k, sending Feedback with the request id, so the
service's online hit rate moves as it would in production. Every run is bounded by a
request count and a duration, and talks to loopback addresses only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from recops_contracts.loadtest import LoadReport, VersionReport
from recops_runtime.eventloop import freeze_heap, run
from recops_runtime.tools.sequences import UserSequence, read_sequences


class LoadtestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(default="127.0.0.1:8500", description="host:port of the gRPC service.")
    dataset: Path = Field(description="MovieLens file (ml-1m.txt[.gz] or u.data[.gz]).")
    concurrency: int | None = Field(default=None, ge=1, le=4096)
    rate: float | None = Field(default=None, gt=0, le=100_000)
    requests: int = Field(default=2_000, ge=1, le=10_000_000)
    duration_s: float = Field(default=30.0, gt=0, le=3_600)
    k: int = Field(default=10, ge=1, le=1000)
    feedback: bool = Field(default=True, description="Send a click when the true next item is hit.")
    watch: bool = Field(
        default=False,
        description="Also send the true next item as a watch, recommended or not: the user's "
        "own choice, which training reads back as a new interaction.",
    )
    sessions: bool = Field(
        default=False,
        description="Replay every user's last holdout items once each, in order, users "
        "interleaved (then again), instead of a random user and cut per request: a user "
        "who watches reaches each of their items.",
    )
    send_history: bool = Field(
        default=True,
        description="Send the history in the request; off: rely on the service's history store.",
    )
    holdout: int = Field(default=1, ge=1, description="The cut falls among the last N items.")
    max_users: int | None = Field(default=None, ge=1)
    history_len: int = Field(default=200, ge=1)
    processes: int = Field(default=1, ge=1, le=64)
    connections: int = Field(
        default=1,
        ge=1,
        le=256,
        description="gRPC connections per client process, requests spread over them in "
        "turn. A server of several processes shares its port per connection (the kernel "
        "hands each connection to one process): give it several.",
    )
    timeout_s: float = Field(default=5.0, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_mode(self) -> LoadtestSettings:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("give exactly one of concurrency (closed loop) or rate (open loop)")
        return self


# `recops loadtest` exits 1 when more than this share of its Recommend calls failed.
DEFAULT_MAX_ERROR_RATE = 0.01


@dataclass
class _Samples:
    versions: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    feedback_sent: int = 0
    feedback_errors: int = 0
    watched: set[tuple[str, str]] = field(default_factory=set)
    watch_sent: int = 0
    started: float = 0.0
    finished: float = 0.0


def _session_cuts(
    sequences: list[UserSequence], holdout: int, share: int = 0, shares: int = 1
) -> Iterator[tuple[int, int]]:
    """(user index, cut) for every user's last ``holdout`` items, oldest first, one user
    after another at each step (so a user's next request waits for all the others'), over
    and over; of the users, every ``shares``-th from ``share`` on."""
    order = [
        (index, len(seq.items) - back)
        for back in range(holdout, 0, -1)
        for index, seq in enumerate(sequences)
        if len(seq.items) > back and index % shares == share
    ]
    return itertools.cycle(order)


def check_loopback(target: str) -> None:
    host = target.rsplit(":", 1)[0].strip("[]")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ValueError(f"target {target!r}: cannot resolve {host!r}: {exc}") from exc
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if outside:
        raise ValueError(
            f"target {target!r} resolves to {', '.join(outside)}: load tests only run "
            "against loopback addresses (127.0.0.1, ::1, localhost)"
        )


async def _worker(
    settings: LoadtestSettings,
    sequences: list[UserSequence],
    index: int,
    requests: int,
    deadline_wall: float,
) -> _Samples:
    import grpc

    from recops_runtime.proto.recops.v1 import (
        recommender_pb2 as pb,
        recommender_pb2_grpc as pb_grpc,
    )

    rng = random.Random(settings.seed * 1_000 + index)
    samples = _Samples()
    # A local subchannel pool per channel: otherwise channels to one target share one
    # connection, and one connection reaches one process of the server.
    channels = [
        grpc.aio.insecure_channel(settings.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(settings.connections)
    ]
    stubs = [pb_grpc.RecommenderStub(c) for c in channels]  # type: ignore[no-untyped-call]
    await asyncio.wait_for(
        asyncio.gather(*(c.channel_ready() for c in channels)), settings.timeout_s
    )
    turn = itertools.cycle(stubs)
    sent = 0

    # Built once per (user, cut): the generator should spend its CPU sending, not building.
    built: dict[tuple[int, int], pb.RecommendRequest] = {}

    cuts = None
    if settings.sessions:  # several client processes share the users out
        cuts = _session_cuts(sequences, settings.holdout, index, settings.processes)

    async def feedback(
        stub: pb_grpc.RecommenderStub,
        request_id: str,
        user: str,
        item: str,
        event: pb.FeedbackEvent,
    ) -> bool:
        """One Feedback call; False (and counted) when it failed."""
        try:
            await stub.Feedback(
                pb.FeedbackRequest(request_id=request_id, user_id=user, item_id=item, event=event),
                timeout=settings.timeout_s,
            )
        except grpc.aio.AioRpcError:
            samples.feedback_errors += 1
            return False
        return True

    async def one(scheduled: float, stub: pb_grpc.RecommenderStub) -> None:
        if cuts is not None:
            index, cut = next(cuts)
        else:
            index = rng.randrange(len(sequences))
            cut = len(sequences[index].items) - rng.randint(
                1, min(settings.holdout, len(sequences[index].items) - 1)
            )
        seq = sequences[index]
        truth = seq.items[cut]
        request = built.get((index, cut))
        if request is None:
            history = seq.items[max(0, cut - settings.history_len) : cut]
            request = built[index, cut] = pb.RecommendRequest(
                user_id=seq.user_id,
                history=history if settings.send_history else (),
                k=settings.k,
                exclude_seen=True,
            )
        try:
            reply = await stub.Recommend(request, timeout=settings.timeout_s)
        except grpc.aio.AioRpcError as exc:
            samples.latencies.append(time.perf_counter() - scheduled)
            samples.versions.append("none")
            samples.codes.append(exc.code().name)
            samples.hits.append(False)
            return
        samples.latencies.append(time.perf_counter() - scheduled)
        samples.versions.append(reply.version)
        samples.codes.append("OK")
        hit = any(item.item_id == truth for item in reply.items)
        samples.hits.append(hit)
        if settings.feedback and hit:
            samples.feedback_sent += 1
            await feedback(stub, reply.request_id, seq.user_id, truth, pb.FEEDBACK_EVENT_CLICK)
        if settings.watch:
            samples.watch_sent += 1
            if await feedback(stub, reply.request_id, seq.user_id, truth, pb.FEEDBACK_EVENT_WATCH):
                samples.watched.add((seq.user_id, truth))

    samples.started = time.perf_counter()
    try:
        if settings.concurrency is not None:
            share = max(1, settings.concurrency // settings.processes)

            async def loop(stub: pb_grpc.RecommenderStub) -> None:
                nonlocal sent
                while sent < requests and time.time() < deadline_wall:
                    sent += 1
                    await one(time.perf_counter(), stub)

            await asyncio.gather(*(loop(next(turn)) for _ in range(share)))
        else:
            assert settings.rate is not None
            interval = settings.processes / settings.rate
            pending: set[asyncio.Task[None]] = set()
            start = time.perf_counter()
            while sent < requests and time.time() < deadline_wall:
                scheduled = start + sent * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent += 1
                task = asyncio.create_task(one(scheduled, next(turn)))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending, timeout=settings.timeout_s + 1)
    finally:
        samples.finished = time.perf_counter()
        await asyncio.gather(*(c.close() for c in channels))
    return samples


def _run_process(
    settings: LoadtestSettings, index: int, requests: int, deadline_wall: float
) -> _Samples:
    sequences = read_sequences(settings.dataset, max_users=settings.max_users)
    freeze_heap()
    return run(_worker(settings, sequences, index, requests, deadline_wall))


def run_loadtest(
    settings: LoadtestSettings, sequences: list[UserSequence] | None = None
) -> LoadReport:
    """Runs the load; ``sequences`` (single process only) replays these instead of
    reading ``settings.dataset``, so repeated runs do not pay for reading it again."""
    check_loopback(settings.target)
    shares = [settings.requests // settings.processes] * settings.processes
    shares[0] += settings.requests - sum(shares)
    if settings.processes == 1:
        if sequences is None:
            sequences = read_sequences(settings.dataset, max_users=settings.max_users)
        deadline = time.time() + settings.duration_s
        results = [run(_worker(settings, sequences, 0, shares[0], deadline))]
    else:
        with ProcessPoolExecutor(settings.processes, mp_context=get_context("spawn")) as pool:
            # Each process reads the data first; the clock starts once all could have.
            deadline = time.time() + settings.duration_s + 5.0
            futures = [
                pool.submit(_run_process, settings, i, share, deadline)
                for i, share in enumerate(shares)
            ]
            results = [f.result() for f in futures]
    return summarize(settings, results)


def _version_report(
    name: str, codes: list[str], lat: np.ndarray, hits: list[bool], elapsed: float
) -> VersionReport:
    ok_mask = np.array([c == "OK" for c in codes], dtype=bool)
    ok = int(ok_mask.sum())
    errors: dict[str, int] = {}
    for code in codes:
        if code != "OK":
            errors[code] = errors.get(code, 0) + 1
    ok_lat = lat[ok_mask] * 1000.0 if ok else np.zeros(1)
    clicks = int(sum(hits))
    return VersionReport(
        version=name,
        requests=len(codes),
        ok=ok,
        errors=errors,
        error_rate=(len(codes) - ok) / max(1, len(codes)),
        throughput_rps=ok / elapsed if elapsed > 0 else 0.0,
        p50_ms=float(np.percentile(ok_lat, 50)),
        p90_ms=float(np.percentile(ok_lat, 90)),
        p99_ms=float(np.percentile(ok_lat, 99)),
        max_ms=float(ok_lat.max()),
        clicks=clicks,
        hit_rate=clicks / ok if ok else 0.0,
    )


def summarize(settings: LoadtestSettings, results: list[_Samples]) -> LoadReport:
    versions = [v for r in results for v in r.versions]
    codes = [c for r in results for c in r.codes]
    lat = np.array([x for r in results for x in r.latencies], dtype=np.float64)
    hits = [h for r in results for h in r.hits]
    elapsed = max(r.finished for r in results) - min(r.started for r in results)
    if settings.processes > 1:  # process clocks differ: use the slowest worker's span
        elapsed = max(r.finished - r.started for r in results)
    per_version = []
    for name in sorted(set(versions)):
        idx = [i for i, v in enumerate(versions) if v == name]
        per_version.append(
            _version_report(
                name, [codes[i] for i in idx], lat[idx], [hits[i] for i in idx], elapsed
            )
        )
    overall = _version_report("all", codes, lat, hits, elapsed)
    return LoadReport(
        mode="closed" if settings.concurrency is not None else "open",
        concurrency=settings.concurrency,
        rate=settings.rate,
        elapsed_s=elapsed,
        requests=len(codes),
        throughput_rps=overall.throughput_rps,
        error_rate=overall.error_rate,
        p50_ms=overall.p50_ms,
        p90_ms=overall.p90_ms,
        p99_ms=overall.p99_ms,
        feedback_sent=sum(r.feedback_sent for r in results),
        feedback_errors=sum(r.feedback_errors for r in results),
        watch_sent=sum(r.watch_sent for r in results),
        watched=sorted(set().union(*(r.watched for r in results))),
        versions=per_version,
        overall=overall,
    )


def too_many_errors(report: LoadReport, max_error_rate: float) -> str | None:
    """Why a run failed (its Recommend errors above ``max_error_rate``), else None."""
    if report.error_rate <= max_error_rate:
        return None
    failed = report.overall.requests - report.overall.ok
    codes = ", ".join(f"{code}={n}" for code, n in sorted(report.overall.errors.items()))
    return (
        f"{failed} of {report.requests} requests failed ({report.error_rate:.1%}: {codes}), "
        f"more than --max-error-rate {max_error_rate:g} allows"
    )
