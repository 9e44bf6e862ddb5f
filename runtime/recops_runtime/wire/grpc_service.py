"""The gRPC adapter: converts ``recops.v1`` messages to and from the data plane's.

Besides ``recops.v1.Recommender`` the server exposes ``grpc.health.v1.Health`` (the
overall service "", ``recops.v1.Recommender`` and one service per version named
``recops.v1.Recommender/<version>``) and server reflection, so grpcurl and Kubernetes'
gRPC probes work against it.

The servicer's methods take the request's raw bytes and parse them themselves: bytes that
are not the message (truncated, garbage, bad UTF-8 in a string, an overlong varint) are
then an INVALID_ARGUMENT the caller can read, counted like any refused request, where a
deserializer registered with the method would fail inside grpc as UNKNOWN with a
traceback in the log per call.
"""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from recops_runtime.api.errors import ServiceError, grpc_status, invalid
from recops_runtime.api.messages import (
    FEEDBACK_EVENTS,
    VERSION_WIRE_FIELDS,
    FeedbackRequest,
    RecommendRequest,
)
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb
from recops_runtime.requestpath.dataplane import DataPlane
from recops_runtime.scoring.batcher import monotonic_deadline
from recops_runtime.wire.reflection import enable_reflection

SERVICE_NAME = "recops.v1.Recommender"
# Proto enum value -> the data plane's event name ("" for UNSPECIFIED: rejected there).
_EVENTS = {0: "", **{i: name for i, name in enumerate(FEEDBACK_EVENTS, start=1)}}
M = TypeVar("M", bound=Message)


def version_service(version: str) -> str:
    return f"{SERVICE_NAME}/{version}"


def parse(message: type[M], raw: bytes) -> M:
    """The request message, or INVALID_ARGUMENT naming the body when the bytes are not one."""
    try:
        parsed: M = message.FromString(raw)
    except DecodeError as exc:
        raise invalid("body", f"not a valid {message.DESCRIPTOR.full_name} ({exc})") from exc
    return parsed


class RecommenderServicer:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def Recommend(  # noqa: N802 (the RPC's name)
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.RecommendResponse:
        try:
            request = parse(pb.RecommendRequest, raw)
        except ServiceError as exc:
            self.plane.count_refused(exc.status)
            await context.abort(grpc_status(exc.status), exc.message)
        query = RecommendRequest(
            user_id=request.user_id,
            history=list(request.history),
            k=request.k,
            exclude_seen=request.exclude_seen,
            exclude_items=list(request.exclude_items),
            request_id=request.request_id,
            version=request.version,
        )
        try:
            answer = await self.plane.recommend(query, monotonic_deadline(context.time_remaining()))
        except ServiceError as exc:
            await context.abort(grpc_status(exc.status), exc.message)
        return pb.RecommendResponse(
            items=[pb.ScoredItem(item_id=i.item_id, score=i.score) for i in answer.items],
            request_id=answer.request_id,
            version=answer.version,
            target=answer.target,
            model_version=answer.model_version,
            fallback_reason=answer.fallback_reason,
        )

    async def Feedback(  # noqa: N802
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.FeedbackResponse:
        try:
            request = parse(pb.FeedbackRequest, raw)
            event: Any = _EVENTS.get(request.event, "")
            query = FeedbackRequest(
                user_id=request.user_id,
                item_id=request.item_id,
                event=event,
                request_id=request.request_id,
                timestamp=request.timestamp,
                value=request.value,
            )
            answer = await self.plane.feedback(query)
        except ServiceError as exc:
            await context.abort(grpc_status(exc.status), exc.message)
        return pb.FeedbackResponse(recommended=answer.recommended, version=answer.version)

    async def GetModelInfo(  # noqa: N802
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        try:
            parse(pb.GetModelInfoRequest, raw)
        except ServiceError as exc:
            await context.abort(grpc_status(exc.status), exc.message)
        info = self.plane.model_info()
        return pb.GetModelInfoResponse(
            versions=[
                pb.ModelVersionInfo(**{name: getattr(v, name) for name in VERSION_WIRE_FIELDS})
                for v in info.versions
            ],
            sticky=info.sticky,
        )


class HealthReporter:
    """Keeps grpc.health.v1 statuses in step with the data plane's versions."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.servicer = health.aio.HealthServicer()
        self._known: set[str] = set()
        self.stopping = False

    async def refresh(self) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        ready = self.plane.ready and not self.stopping
        await self.servicer.set("", serving if ready else not_serving)
        await self.servicer.set(SERVICE_NAME, serving if ready else not_serving)
        versions = self.plane.registry.versions
        current = set(versions)
        for name in current:
            up = versions[name].ready and not self.stopping
            await self.servicer.set(version_service(name), serving if up else not_serving)
        for name in self._known - current:
            await self.servicer.set(
                version_service(name), health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
        self._known = current


def build_grpc_server(
    plane: DataPlane,
    health_reporter: HealthReporter,
    *,
    reuse_port: bool = False,
    reflection: bool = True,
) -> grpc.aio.Server:
    """``reuse_port``: share the port with the other processes of one server (the kernel
    spreads incoming connections among them); off, a second server on a taken port fails
    instead of silently splitting its traffic. ``reflection`` off (``--no-reflection``):
    the reflection services answer UNIMPLEMENTED, so a public port does not describe
    itself to whoever asks."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ]
    )
    add_recommender(RecommenderServicer(plane), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_reporter.servicer, server)
    if reflection:
        enable_reflection(server, (pb.DESCRIPTOR, health_pb2.DESCRIPTOR))
    return server


def add_recommender(servicer: RecommenderServicer, server: grpc.aio.Server) -> None:
    """Registers the methods as the generated ``add_RecommenderServicer_to_server`` does,
    but with raw bytes in (:func:`parse` runs in the method)."""
    responses: dict[str, Any] = {
        "Recommend": pb.RecommendResponse,
        "Feedback": pb.FeedbackResponse,
        "GetModelInfo": pb.GetModelInfoResponse,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=None,
            response_serializer=response.SerializeToString,
        )
        for name, response in responses.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
