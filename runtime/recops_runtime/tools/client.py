"""A small typed client for the Recommender service (``grpc.aio``).

async with RecommenderClient("127.0.0.1:8500") as client:
    answer = await client.recommend("42", history=["1", "2"], k=10)
    await client.feedback("42", answer.items[0].item_id, "click", request_id=answer.request_id)
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import grpc

from recops_runtime.api.messages import (
    FEEDBACK_EVENTS,
    VERSION_WIRE_FIELDS,
    FeedbackEventName,
    FeedbackResponse,
    ModelInfo,
    RecommendResponse,
    ScoredItem,
    VersionInfo,
)
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pb_grpc

_EVENT_VALUES = {
    name: pb.FeedbackEvent.Value(f"FEEDBACK_EVENT_{name.upper()}") for name in FEEDBACK_EVENTS
}


class RecommenderClient:
    def __init__(
        self, target: str, *, timeout_s: float | None = 5.0, own_connection: bool = False
    ) -> None:
        """``own_connection``: open a connection of this client's own rather than share
        one with the process's other clients of the same target; a server of several
        processes hands each connection to one of them."""
        self.target = target
        self.timeout_s = timeout_s
        options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = pb_grpc.RecommenderStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> RecommenderClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self._channel.channel_ready(), timeout_s)

    async def recommend(
        self,
        user_id: str,
        *,
        history: list[str] | None = None,
        k: int = 10,
        exclude_seen: bool = False,
        exclude_items: list[str] | None = None,
        request_id: str = "",
        version: str = "",
        timeout_s: float | None = None,
    ) -> RecommendResponse:
        reply = await self._stub.Recommend(
            pb.RecommendRequest(
                user_id=user_id,
                history=history or [],
                k=k,
                exclude_seen=exclude_seen,
                exclude_items=exclude_items or [],
                request_id=request_id,
                version=version,
            ),
            timeout=timeout_s or self.timeout_s,
        )
        return RecommendResponse(
            items=[ScoredItem(i.item_id, i.score) for i in reply.items],
            request_id=reply.request_id,
            version=reply.version,
            target=reply.target,
            model_version=reply.model_version,
            fallback_reason=reply.fallback_reason,
        )

    async def feedback(
        self,
        user_id: str,
        item_id: str,
        event: FeedbackEventName,
        *,
        request_id: str = "",
        timestamp: float = 0.0,
        value: float = 0.0,
    ) -> FeedbackResponse:
        reply = await self._stub.Feedback(
            pb.FeedbackRequest(
                request_id=request_id,
                user_id=user_id,
                item_id=item_id,
                event=_EVENT_VALUES[event],
                timestamp=timestamp,
                value=value,
            ),
            timeout=self.timeout_s,
        )
        return FeedbackResponse(recommended=reply.recommended, version=reply.version)

    async def model_info(self) -> ModelInfo:
        reply = await self._stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=self.timeout_s)
        return ModelInfo(
            versions=[
                VersionInfo(
                    **{name: getattr(v, name) for name in VERSION_WIRE_FIELDS}, engine_dir=""
                )
                for v in reply.versions
            ],
            sticky=reply.sticky,
        )
