"""Free TCP ports on 127.0.0.1 for the servers tests and benchmarks start."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServePorts:
    """Free ports for one `recops serve` on 127.0.0.1."""

    grpc: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)

    def flags(self) -> list[str]:
        """`recops serve`'s flags to listen on these ports."""
        return [
            "--host",
            "127.0.0.1",
            "--grpc-port",
            str(self.grpc),
            "--http-port",
            str(self.http),
            "--metrics-port",
            str(self.metrics),
        ]
