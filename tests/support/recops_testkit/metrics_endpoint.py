"""A runtime's /metrics endpoint without the runtime: a registry served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, start_http_server


@contextmanager
def exposed(registry: CollectorRegistry) -> Iterator[int]:
    """Serve ``registry`` at ``http://127.0.0.1:<port>/metrics`` until the block ends."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(5)
