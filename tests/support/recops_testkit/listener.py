"""The emulated API server's HTTP listener, stopped and started again as a server restarts.

The store (the emulator) outlives the listener, as etcd outlives a kube-apiserver: a
restart closes every connection (watch streams and requests in flight), refuses new ones
while it is down, and comes back on the same address with the same objects.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import kmock

from recops_cli.quickstart.processes import free_port
from recops_testkit.emulator import ApiServerEmulator


class Listener:
    """``async with Listener(api)``: serve ``api`` on one port; ``restart`` it there."""

    def __init__(self, api: ApiServerEmulator, port: int | None = None) -> None:
        self.api = api
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: kmock.Server | None = None

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the listener is already serving")
        server = kmock.Server(self.api, port=self.port)
        await server.__aenter__()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
