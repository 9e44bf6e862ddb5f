"""Both adapters fuzzed at the byte level: random and mutated protobuf bytes on the gRPC
methods, random, deeply nested and broken JSON on the HTTP routes. Whatever arrives, the
answer is a status the caller caused (never UNKNOWN, INTERNAL or a 5xx) and the server
stays ready. Bounded: a fixed number of examples each, and at most a minute of sending."""

from __future__ import annotations

import json
import time

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings, strategies as st

from recops_runtime.proto.recops.v1 import recommender_pb2 as pb
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.serve_helpers import grpc_target, http_url

EXAMPLES = 200
CAP_S = 60.0  # each adapter's sending stops here, however many examples are left
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
METHODS = ("/recops.v1.Recommender/Recommend", "/recops.v1.Recommender/Feedback")
SERVER_FAULTS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

_valid = [
    pb.RecommendRequest(user_id=user_id(1), history=[item_id(2), item_id(3)], k=5),
    pb.FeedbackRequest(user_id=user_id(1), item_id=item_id(2), event=2, value=1.0),
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid message with a few bytes overwritten, cut short or extended."""
    raw = bytearray(draw(st.sampled_from(_valid)).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut]) + draw(st.binary(max_size=16))


grpc_payloads = st.tuples(st.sampled_from(METHODS), st.one_of(st.binary(max_size=512), _mutated()))


@st.composite
def _deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    return ('{"userId": "u", "history": ' + inner + "}").encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)
http_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    _deeply_nested(),
    st.binary(max_size=256),
    st.text(max_size=64).map(lambda t: ('{"userId": "' + t).encode()),  # cut short
)
http_requests = st.tuples(
    st.sampled_from(["/v1/recommend", "/v1/feedback"]),
    http_bodies,
    st.sampled_from(["application/json", "text/plain", None]),
)


def _collect(strategy: st.SearchStrategy[object]) -> list[object]:
    examples: list[object] = []

    @FUZZ
    @given(strategy)
    def collect(example: object) -> None:
        examples.append(example)

    collect()
    return examples


async def _assert_serving(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_random_bytes_on_the_grpc_methods(start_server) -> None:
    server = await start_server()
    target = grpc_target(server)
    examples = _collect(grpc_payloads)
    sent, stop_at = 0, time.monotonic() + CAP_S
    async with grpc.aio.insecure_channel(target) as channel:
        for method, payload in examples:  # type: ignore[misc]
            if time.monotonic() > stop_at:
                break
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            try:
                await call(payload, timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() not in SERVER_FAULTS, (method, payload, exc.details())
            sent += 1
    assert sent >= min(len(examples), 50)
    await _assert_serving(target)


async def test_random_and_deeply_nested_json_on_the_http_routes(start_server) -> None:
    server = await start_server()
    examples = _collect(http_requests)
    sent, stop_at = 0, time.monotonic() + CAP_S
    async with httpx.AsyncClient(timeout=10) as http:
        for path, body, content_type in examples:  # type: ignore[misc]
            if time.monotonic() > stop_at:
                break
            headers = {"Content-Type": content_type} if content_type else {}
            reply = await http.post(http_url(server, path), content=body, headers=headers)
            assert reply.status_code < 500, (path, body[:200], reply.text)
            assert "error" in reply.json() or reply.status_code == 200, reply.text
            sent += 1
        ready = await http.get(http_url(server, "/readyz"))
    assert sent >= min(len(examples), 50)
    assert ready.status_code == 200
    await _assert_serving(grpc_target(server))
