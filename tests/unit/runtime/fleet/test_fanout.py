"""One admin call changes every process of a multi-process server, or none of them."""

from __future__ import annotations

from typing import Any

from recops_runtime.fleet.fanout import AdminFanOut, Reply, Worker, error_reply
from recops_runtime.wire.admin_http import INTERNAL_PREFIX


class FakeProcess:
    """A worker's admin API as far as the fan-out sees it."""

    def __init__(self, refuse_stage: bool = False, refuse_traffic: bool = False) -> None:
        self.traffic: Any = {"weights": {"v1": 100, "v2": 0}, "sticky": False}
        self.serving: dict[str, str] = {"v1": "engines/a", "v2": "engines/b"}
        self.staged: dict[str, str] = {}
        self.refuse_stage = refuse_stage
        self.refuse_traffic = refuse_traffic

    def handle(self, method: str, path: str, body: Any) -> Reply:
        if (method, path) == ("GET", "/admin/v1/traffic"):
            return Reply(200, self.traffic)
        if (method, path) == ("PUT", "/admin/v1/traffic"):
            if self.refuse_traffic or sum(body["weights"].values()) != 100:
                return error_reply(400, "INVALID_ARGUMENT", "weights: must sum to 100")
            self.traffic = body
            return Reply(200, body)
        if (method, path) == ("POST", f"{INTERNAL_PREFIX}/staged"):
            if self.refuse_stage:
                return error_reply(422, "FAILED_PRECONDITION", "engine refused: out of memory")
            self.staged[body["version"]] = body["engineDir"]
            return Reply(202, {"staged": body["version"]})
        if method == "POST" and path.endswith("/commit"):
            name = path.split("/")[-2]
            self.serving[name] = self.staged.pop(name)
            return Reply(201, {"version": name, "engine_dir": self.serving[name]})
        if method == "DELETE" and path.startswith(f"{INTERNAL_PREFIX}/staged/"):
            self.staged.pop(path.rsplit("/", 1)[1], None)
            return Reply(200, {"discarded": True})
        raise AssertionError(f"unexpected {method} {path}")


def fanout(*processes: FakeProcess) -> AdminFanOut:
    async def send(index: int, method: str, path: str, body: Any) -> Reply:
        return processes[index].handle(method, path, body)

    return AdminFanOut([Worker(i, 1000 + i) for i in range(len(processes))], send)


async def test_a_hot_swap_serves_everywhere_only_once_every_process_has_loaded_it() -> None:
    processes = [FakeProcess(), FakeProcess(), FakeProcess()]
    reply = await fanout(*processes).load_version({"version": "v1", "engineDir": "engines/c"})
    assert reply.status == 201
    assert all(p.serving["v1"] == "engines/c" and not p.staged for p in processes)


async def test_an_engine_one_process_refuses_is_discarded_by_the_others() -> None:
    processes = [FakeProcess(), FakeProcess(refuse_stage=True), FakeProcess()]
    reply = await fanout(*processes).load_version({"version": "v1", "engineDir": "engines/c"})
    assert reply.status == 422
    assert reply.message.startswith("process 1 (pid 1001): engine refused: out of memory")
    assert "discarded" in reply.message
    assert all(p.serving["v1"] == "engines/a" and not p.staged for p in processes)


async def test_an_engine_every_process_refuses_is_reported_once() -> None:
    processes = [FakeProcess(refuse_stage=True), FakeProcess(refuse_stage=True)]
    reply = await fanout(*processes).load_version({"version": "v3", "engineDir": "engines/x"})
    assert reply.status == 422
    assert reply.body["error"]["code"] == "FAILED_PRECONDITION"
    assert "in every process" in reply.message
    assert all("v3" not in p.serving for p in processes)


async def test_a_bad_split_is_refused_as_one_process_refuses_it_and_changes_nothing() -> None:
    processes = [FakeProcess(), FakeProcess()]
    reply = await fanout(*processes).set_traffic({"weights": {"v1": 60, "v2": 60}})
    assert reply.status == 400 and reply.message == "weights: must sum to 100"
    assert all(p.traffic["weights"] == {"v1": 100, "v2": 0} for p in processes)


async def test_a_split_one_process_fails_is_undone_in_every_process() -> None:
    processes = [FakeProcess(), FakeProcess(), FakeProcess(refuse_traffic=True)]
    reply = await fanout(*processes).set_traffic({"weights": {"v1": 10, "v2": 90}})
    assert not reply.ok and reply.message.startswith("process 2 (pid 1002):")
    assert "previous split" in reply.message
    assert all(p.traffic["weights"] == {"v1": 100, "v2": 0} for p in processes)


async def test_a_split_reaches_every_process() -> None:
    processes = [FakeProcess(), FakeProcess()]
    reply = await fanout(*processes).set_traffic({"weights": {"v1": 10, "v2": 90}})
    assert reply.ok
    assert all(p.traffic["weights"] == {"v1": 10, "v2": 90} for p in processes)
