"""The gRPC adapter: converts ``recops.v1`` messages to and from the data plane's.

Besides ``recops.v1.Recommender`` the server exposes ``grpc.health.v1.Health`` (the
overall service "", ``recops.v1.Recommender`` and one service per version named
``recops.v1.Recommender/<version>``) and server reflection, so grpcurl and Kubernetes'
gRPC probes work against it.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from recops_runtime.batcher import monotonic_deadline
from recops_runtime.dataplane import DataPlane
from recops_runtime.errors import ServiceError, grpc_status
from recops_runtime.messages import (
    FEEDBACK_EVENTS,
    VERSION_WIRE_FIELDS,
    FeedbackRequest,
    RecommendRequest,
)
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pb_grpc

SERVICE_NAME = "recops.v1.Recommender"
# Proto enum value -> the data plane's event name ("" for UNSPECIFIED: rejected there).
_EVENTS = {0: "", **{i: name for i, name in enumerate(FEEDBACK_EVENTS, start=1)}}


def version_service(version: str) -> str:
    return f"{SERVICE_NAME}/{version}"


class RecommenderServicer(pb_grpc.RecommenderServicer):
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def Recommend(  # noqa: N802 (the RPC's name)
        self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecommendResponse:
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
        self, request: pb.FeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.FeedbackResponse:
        event: Any = _EVENTS.get(request.event, "")
        query = FeedbackRequest(
            user_id=request.user_id,
            item_id=request.item_id,
            event=event,
            request_id=request.request_id,
            timestamp=request.timestamp,
            value=request.value,
        )
        try:
            answer = await self.plane.feedback(query)
        except ServiceError as exc:
            await context.abort(grpc_status(exc.status), exc.message)
        return pb.FeedbackResponse(recommended=answer.recommended, version=answer.version)

    async def GetModelInfo(  # noqa: N802
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
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
        current = set(self.plane.versions)
        for name in current:
            up = self.plane.versions[name].ready and not self.stopping
            await self.servicer.set(version_service(name), serving if up else not_serving)
        for name in self._known - current:
            await self.servicer.set(
                version_service(name), health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
        self._known = current


def build_grpc_server(
    plane: DataPlane, health_reporter: HealthReporter, *, reuse_port: bool = False
) -> grpc.aio.Server:
    """``reuse_port``: share the port with the other processes of one server (the kernel
    spreads incoming connections among them); off, a second server on a taken port fails
    instead of silently splitting its traffic."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ]
    )
    pb_grpc.add_RecommenderServicer_to_server(  # type: ignore[no-untyped-call]
        RecommenderServicer(plane), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_reporter.servicer, server)
    reflection.enable_server_reflection(
        (
            pb.DESCRIPTOR.services_by_name["Recommender"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server
