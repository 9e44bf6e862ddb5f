"""A gRPC Recommender that answers one fixed list: no engine, no data plane, the runtime's
event loop. ``python echo_server.py PORT`` prints ``ready`` once it listens."""

from __future__ import annotations

import sys
from typing import Any

import grpc

from recops_runtime.eventloop import run
from recops_runtime.proto.recops.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pb_grpc

REPLY = pb.RecommendResponse(
    items=[pb.ScoredItem(item_id=str(i), score=1.0) for i in range(10)], version="v1"
)


class Echo(pb_grpc.RecommenderServicer):
    async def Recommend(self, request: Any, context: Any) -> Any:  # noqa: N802 (the RPC's name)
        return REPLY


async def serve(port: str) -> None:
    server = grpc.aio.server()
    pb_grpc.add_RecommenderServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    run(serve(sys.argv[1]))
