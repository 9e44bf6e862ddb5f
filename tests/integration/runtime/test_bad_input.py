"""Every bad input gets a clear answer: malformed protobuf bytes, deeply nested or
non-JSON bodies, unknown routes, stalled bodies, bad version names, out-of-range feedback,
and reflection clients that ask for ``grpc.reflection.v1``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from recops_runtime.proto.recops.v1 import recommender_pb2 as pb
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.serve_helpers import admin_url, grpc_target, http_url, metric, metrics_text

RECOMMEND = "/recops.v1.Recommender/Recommend"
FEEDBACK = "/recops.v1.Recommender/Feedback"
_GOOD = pb.RecommendRequest(user_id="u1", history=["1", "2"]).SerializeToString()
MALFORMED = {
    "truncated": _GOOD[:-1],
    "garbage": b"\xff\xff\xff\xff",
    "invalid utf-8": b"\x0a\x02\xff\xfe",  # user_id = two bytes that are not UTF-8
    "overlong varint": b"\x18" + b"\xff" * 10 + b"\x01",  # k as an 11-byte varint
}


async def _raw_call(target: str, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(payload, timeout=10)
    return caught.value


async def test_malformed_protobuf_is_invalid_argument_and_counted(
    start_server, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    caplog.set_level(logging.WARNING)
    for method in (RECOMMEND, FEEDBACK):
        for name, payload in MALFORMED.items():
            error = await _raw_call(grpc_target(server), method, payload)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, name, error)
            assert (error.details() or "").startswith("body: not a valid"), error.details()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    text = await metrics_text(server)
    refused = metric(text, "recops_requests_total", version="none", code="INVALID_ARGUMENT")
    assert refused == len(MALFORMED)  # the Recommend calls: the series counts Recommend only
    async with RecommenderClient(grpc_target(server)) as client:
        assert (await client.recommend(user_id(1), history=[item_id(1)])).items


@pytest.mark.parametrize("depth", [1000, 50_000])
@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/feedback"])
async def test_deeply_nested_json_is_a_400_in_the_envelope(
    start_server, path: str, depth: int
) -> None:
    server = await start_server()
    nested = "[" * depth + "]" * depth
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            http_url(server, path),
            content=json.dumps({"userId": "x"})[:-1] + ', "history": ' + nested + "}",
            headers={"Content-Type": "application/json"},
        )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "INVALID_ARGUMENT"
    if depth > 10_000:
        # Past any recursion limit: the parser itself gives up. At 1,000 levels it depends on
        # how deep the parsing call already is whether the parser or the field check refuses.
        assert reply.json()["error"]["message"].startswith("body:")


@pytest.mark.parametrize("content_type", ["text/plain", None])
async def test_a_body_that_is_not_json_is_a_415(start_server, content_type: str | None) -> None:
    server = await start_server()
    body = json.dumps({"userId": user_id(1), "history": [item_id(1)]}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient() as http:
        # httpx adds no Content-Type of its own to raw bytes.
        reply = await http.post(http_url(server, "/v1/recommend"), content=body, headers=headers)
    assert reply.status_code == 415, reply.text
    assert reply.json()["error"]["message"].startswith("Content-Type:")


async def test_unknown_routes_methods_and_large_bodies_answer_in_the_envelope(
    start_server,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        missing = await http.get(http_url(server, "/v1/nothing-here"))
        wrong_method = await http.get(http_url(server, "/v1/recommend"))
        too_large = await http.post(
            http_url(server, "/v1/recommend"),
            content=b'{"userId": "' + b"x" * (5 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "UNIMPLEMENTED"
    assert "POST" in wrong_method.headers["Allow"]
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_model_info_uses_camel_case_and_hides_the_engine_folder(start_server) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        info = (await http.get(http_url(server, "/v1/model-info"))).json()
    (version,) = info["versions"]
    assert set(version) == {
        "version",
        "target",
        "modelVersion",
        "precision",
        "numItems",
        "numUsers",
        "maxlen",
        "weight",
        "ready",
    }
    assert version["modelVersion"] == "1" and info["sticky"] is False


async def test_a_stalled_body_is_timed_out(start_server) -> None:
    server = await start_server(http_read_timeout_s=0.5)
    assert server.ports is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.http)
    writer.write(
        b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"userId": '
    )
    await writer.drain()
    started = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    waited = time.monotonic() - started
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert waited < 5


async def test_version_names_follow_the_dns_label_rule(start_server, engines_dir: Path) -> None:
    server = await start_server()
    async with httpx.AsyncClient(timeout=60) as http:
        refused = await http.post(
            admin_url(server, "/admin/v1/versions"),
            json={"version": "a/b", "engineDir": str(engines_dir / "v2")},
        )
        upper = await http.post(
            admin_url(server, "/admin/v1/versions"),
            json={"version": "V2", "engineDir": str(engines_dir / "v2")},
        )
        listed = (await http.get(admin_url(server, "/admin/v1/versions"))).json()
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert message.startswith("version:") and "lowercase letters, digits and '-'" in message
    assert upper.status_code == 400
    assert [v["version"] for v in listed["versions"]] == ["v1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": 1e300}, "timestamp"),
        ({"timestamp": 100.0}, "timestamp"),  # 1970: no feedback is that old
        ({"timestamp": time.time() + 7 * 86400}, "timestamp"),
        ({"value": 1e300}, "value"),
        ({"value": -1}, "value"),
        ({"value": 11}, "value"),
    ],
)
async def test_out_of_range_feedback_is_refused(start_server, change: dict, field: str) -> None:
    server = await start_server()
    body = {"userId": user_id(1), "itemId": item_id(1), "event": "rating", "value": 4, **change}
    async with httpx.AsyncClient() as http:
        reply = await http.post(http_url(server, "/v1/feedback"), json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"].startswith(f"{field}:")
    async with RecommenderClient(grpc_target(server)) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.feedback(
                user_id(1),
                item_id(1),
                "rating",
                timestamp=change.get("timestamp", 0.0),
                value=change.get("value", 4.0),
            )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")


async def test_reflection_v1_is_served_with_the_proto_under_its_package_path(
    start_server,
) -> None:
    server = await start_server()
    # grpc.reflection.v1's messages are v1alpha's under a new package name, field for field.
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="recops.v1.Recommender"),
    ]
    files: dict[str, list[str]] = {}
    for package in ("grpc.reflection.v1", "grpc.reflection.v1alpha"):
        async with grpc.aio.insecure_channel(grpc_target(server)) as channel:
            call = channel.stream_stream(
                f"/{package}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            replies = [r async for r in call(iter(requests), timeout=10)]
        services = {s.name for s in replies[0].list_services_response.service}
        assert {"recops.v1.Recommender", "grpc.reflection.v1.ServerReflection"} <= services
        files[package] = [
            descriptor_pb2.FileDescriptorProto.FromString(raw).name
            for raw in replies[1].file_descriptor_response.file_descriptor_proto
        ]
    assert files["grpc.reflection.v1"] == ["recops/v1/recommender.proto"]
    assert files["grpc.reflection.v1alpha"] == ["recops/v1/recommender.proto"]
