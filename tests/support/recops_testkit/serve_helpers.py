"""Small helpers shared by the runtime's integration tests."""

from __future__ import annotations

import httpx

from recops_runtime.server import RecommendationServer


def grpc_target(server: RecommendationServer) -> str:
    assert server.ports is not None
    return f"127.0.0.1:{server.ports.grpc}"


def http_url(server: RecommendationServer, path: str) -> str:
    assert server.ports is not None
    return f"http://127.0.0.1:{server.ports.http}{path}"


def admin_url(server: RecommendationServer, path: str) -> str:
    """The admin API's address: its own loopback listener, never the public HTTP port."""
    assert server.ports is not None and server.ports.admin
    return f"http://127.0.0.1:{server.ports.admin}{path}"


async def metrics_text(server: RecommendationServer) -> str:
    assert server.ports is not None
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://127.0.0.1:{server.ports.metrics}/metrics")
    return reply.text


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
