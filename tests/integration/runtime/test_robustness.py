"""Bad and excessive traffic: fuzzed requests, overload shedding, deadlines."""

from __future__ import annotations

import asyncio
import collections
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from recops_runtime.engines import Engine, load_engine
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pb_grpc
from recops_runtime.serve_settings import BatchingSettings
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, num_items, user_id
from recops_testkit.serve_helpers import grpc_target

ids = st.one_of(
    st.sampled_from([item_id(i) for i in (1, 2, 50, 150, 197)]),
    st.text(max_size=300),
    st.just(""),
)
requests = st.builds(
    pb.RecommendRequest,
    user_id=st.one_of(st.sampled_from([user_id(1), user_id(50)]), st.text(max_size=300)),
    history=st.lists(ids, max_size=60),
    k=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    exclude_seen=st.booleans(),
    exclude_items=st.lists(ids, max_size=400),
    request_id=st.text(max_size=200),
    version=st.one_of(st.just(""), st.just("v1"), st.text(max_size=80)),
)
feedbacks = st.builds(
    pb.FeedbackRequest,
    request_id=st.text(max_size=200),
    user_id=st.text(max_size=300),
    item_id=ids,
    event=st.integers(min_value=0, max_value=9),
    timestamp=st.floats(allow_nan=True, allow_infinity=True),
    value=st.floats(allow_nan=True, allow_infinity=True, width=32),
)
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}


async def test_fuzzed_requests_never_fail_internally(start_server) -> None:
    server = await start_server()
    outcomes: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(grpc_target(server)) as channel:
        stub = pb_grpc.RecommenderStub(channel)

        async def call(request: pb.RecommendRequest | pb.FeedbackRequest) -> None:
            method = stub.Recommend if isinstance(request, pb.RecommendRequest) else stub.Feedback
            try:
                await method(request, timeout=10)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in ALLOWED, (request, exc.code(), exc.details())
                outcomes[exc.code().name] += 1

        # Hypothesis drives a synchronous test; each example is sent on this loop.
        examples: list[pb.RecommendRequest | pb.FeedbackRequest] = []

        @settings(
            max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(st.one_of(requests, feedbacks))
        def collect(request: pb.RecommendRequest | pb.FeedbackRequest) -> None:
            examples.append(request)

        collect()
        for request in examples:
            await call(request)
    assert outcomes["OK"] > 0 and outcomes["INVALID_ARGUMENT"] > 0
    async with RecommenderClient(grpc_target(server)) as client:
        assert (await client.recommend(user_id(1), history=[item_id(1)])).items


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
json_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            key: st.one_of(json_values, ids, st.lists(ids, max_size=30))
            for key in (
                "userId",
                "history",
                "k",
                "excludeSeen",
                "excludeItems",
                "requestId",
                "version",
                "itemId",
                "event",
                "timestamp",
                "value",
            )
        },
    ),
)


async def test_fuzzed_json_never_fails_internally(start_server) -> None:
    import httpx

    server = await start_server()
    assert server.ports is not None
    base = f"http://127.0.0.1:{server.ports.http}"
    admin = f"http://127.0.0.1:{server.ports.admin}"  # the admin API's own listener
    examples: list[tuple[str, object]] = []

    @settings(
        max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.sampled_from(["/v1/recommend", "/v1/feedback", "/admin/v1/traffic"]), json_bodies)
    def collect(path: str, body: object) -> None:
        examples.append((path, body))

    collect()
    statuses: collections.Counter[int] = collections.Counter()
    async with httpx.AsyncClient(base_url=base) as http:
        for path, body in examples:
            if path.startswith("/admin"):
                reply = await http.put(admin + path, json=body)
            else:
                reply = await http.post(path, json=body)
            assert reply.status_code < 500, (path, body, reply.text)
            statuses[reply.status_code] += 1
        raw = await http.post(
            "/v1/recommend", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert raw.status_code == 400
        huge = await http.post(
            "/v1/feedback",
            json={"userId": "u", "itemId": "i", "event": "click", "timestamp": 10**400},
        )
        assert huge.status_code == 400
    assert statuses[400] > 0


class EngineGate:
    """Engines whose calls wait while the gate is held: the test, not the machine's speed,
    decides when the engine is busy."""

    def __init__(self) -> None:
        self.holding = False
        self.entered = threading.Event()
        self.scored: list[int] = []  # rows of each engine call since hold() (not warm-ups)
        self._open = threading.Event()

    def loader(self, path: Path, threads: int | None) -> Engine:
        return _GatedEngine(load_engine(path, threads), self)

    def hold(self) -> None:
        self.holding = True
        self.scored.clear()
        self._open.clear()

    def release(self) -> None:
        self.holding = False
        self._open.set()

    def wait(self) -> None:
        if self.holding:
            self.entered.set()
            self._open.wait(timeout=60)


class _GatedEngine:
    def __init__(self, engine: Engine, gate: EngineGate) -> None:
        self.manifest = engine.manifest
        self._engine = engine
        self._gate = gate

    def score(self, user_ids: np.ndarray, history: np.ndarray) -> np.ndarray:
        self._gate.wait()
        self._gate.scored.append(len(user_ids))
        return self._engine.score(user_ids, history)

    def close(self) -> None:
        self._engine.close()


async def test_overload_is_shed_and_the_server_stays_up(start_server) -> None:
    max_queue, extra = 4, 20
    gate = EngineGate()
    server = await start_server(
        loader=gate.loader,
        batching=BatchingSettings(
            max_batch_size=2, max_queue=max_queue, engine_workers=1, inline_lone_requests=False
        ),
    )
    batcher = server.registry.versions["v1"].batcher
    history = [item_id(i % num_items() + 1) for i in range(20)]
    gate.hold()
    async with RecommenderClient(grpc_target(server), timeout_s=60) as client:

        async def one(u: int) -> str:
            try:
                await client.recommend(user_id(u % 50 + 1), history=history, k=10)
                return "OK"
            except grpc.aio.AioRpcError as exc:
                return exc.code().name

        # One request in the (held) engine, then a full queue behind it.
        running = asyncio.ensure_future(one(0))
        assert await asyncio.to_thread(gate.entered.wait, 30)
        queued = [asyncio.ensure_future(one(u)) for u in range(1, max_queue + 1)]
        async with asyncio.timeout(30):
            while batcher.depth < max_queue:
                await asyncio.sleep(0.005)
        # Everything past the queue is shed at once, while the engine is still held.
        shed = await asyncio.gather(*(one(u) for u in range(extra)))
        assert collections.Counter(shed) == {"RESOURCE_EXHAUSTED": extra}
        gate.release()
        taken_in = await asyncio.gather(running, *queued)
        assert collections.Counter(taken_in) == {"OK": max_queue + 1}
        after = await client.recommend(user_id(1), history=history)
    assert len(after.items) == 10
    registry = server.plane.metrics.registry
    labels = {"version": "v1", "target": "cpu-onnxruntime"}
    assert (
        registry.get_sample_value("recops_requests_total", {**labels, "code": "RESOURCE_EXHAUSTED"})
        == extra
    )


async def test_an_expired_deadline_is_not_served(start_server) -> None:
    gate = EngineGate()
    server = await start_server(
        loader=gate.loader,
        batching=BatchingSettings(max_batch_size=1, engine_workers=1, inline_lone_requests=False),
    )
    batcher = server.registry.versions["v1"].batcher
    history = [item_id(2)]
    gate.hold()
    async with RecommenderClient(grpc_target(server), timeout_s=60) as client:
        # One request in the (held) engine, then one queued behind it whose deadline
        # passes while it waits: the server must drop it, not score it late.
        running = asyncio.ensure_future(client.recommend(user_id(1), history=history))
        assert await asyncio.to_thread(gate.entered.wait, 30)
        late = asyncio.ensure_future(client.recommend(user_id(2), history=history, timeout_s=1.0))
        async with asyncio.timeout(30):
            while batcher.depth < 1:
                await asyncio.sleep(0.005)
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await late
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        gate.release()
        assert (await running).items
        answer = await client.recommend(user_id(3), history=history)
    assert answer.items
    # The engine scored the running request and the one after, never the expired one.
    assert gate.scored == [1, 1]


async def test_stop_answers_every_request_the_server_took_in(start_server) -> None:
    gate = EngineGate()
    server = await start_server(
        loader=gate.loader,
        batching=BatchingSettings(max_batch_size=1, inline_lone_requests=False),
    )
    history = [item_id(i) for i in range(1, 21)]
    gate.hold()
    outcomes: collections.Counter[str] = collections.Counter()
    async with RecommenderClient(grpc_target(server), timeout_s=30) as client:

        async def one(n: int) -> None:
            try:
                await client.recommend(user_id(n % 300 + 1), history=history)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                outcomes[exc.code().name] += 1

        calls = [asyncio.ensure_future(one(n)) for n in range(60)]
        # Requests taken in (one in the held engine, the rest queued) before the stop.
        batcher = server.registry.versions["v1"].batcher
        async with asyncio.timeout(30):
            while batcher.depth < len(calls) // 2:
                await asyncio.sleep(0.005)
        assert gate.entered.is_set()
        taken_in = batcher.depth + 1
        stopping = asyncio.ensure_future(server.stop())
        await asyncio.sleep(0.2)  # the stop is under way while the engine is still held
        assert not stopping.done()
        gate.release()
        await asyncio.gather(stopping, *calls)
    registry = server.plane.metrics.registry
    served = registry.get_sample_value(
        "recops_requests_total", {"version": "v1", "target": "cpu-onnxruntime", "code": "OK"}
    )
    others = [
        s
        for m in registry.collect()
        if m.name == "recops_requests"
        for s in m.samples
        if s.name == "recops_requests_total" and s.labels["code"] != "OK"
    ]
    assert others == []  # the service itself failed or dropped nothing it took in
    assert served == outcomes["OK"] >= taken_in
