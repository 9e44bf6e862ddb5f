"""Processes of one server see the same histories and served lists without Redis."""

from __future__ import annotations

from pathlib import Path

from recops_runtime.fleet.shared_state_server import SharedStateServer
from recops_runtime.stores.served import Served
from recops_runtime.stores.shared_state import (
    SharedHistoryStore,
    SharedServedLists,
    SharedStateClient,
)


async def test_what_one_process_records_the_others_read(tmp_path: Path) -> None:
    server = SharedStateServer(tmp_path / "state.sock", max_users=10, max_items=3)
    await server.start()
    clients = [SharedStateClient(tmp_path / "state.sock") for _ in range(2)]
    for client in clients:
        await client.connect()
    histories = [SharedHistoryStore(c) for c in clients]
    served = [SharedServedLists(c) for c in clients]
    try:
        for item in ("a", "b", "c", "d"):
            await histories[0].append("u1", item)
        assert await histories[1].recent("u1", 10) == ["b", "c", "d"]  # capped per user
        assert await histories[1].recent("nobody", 10) == []
        served[0].remember("r1", Served("v2", frozenset({"x", "y"})))
        await histories[0].recent("u1", 1)  # a later call of the same process: sent after
        found = await served[1].lookup("r1")
        assert found is not None and (found.version, found.items) == ("v2", {"x", "y"})
        assert await served[1].lookup("r2") is None
        # A click counts once, whichever process receives it.
        assert await served[0].first_hit("r1", found, "x")
        assert not await served[1].first_hit("r1", found, "x")
    finally:
        for lists in served:
            await lists.close()
        await server.close()
