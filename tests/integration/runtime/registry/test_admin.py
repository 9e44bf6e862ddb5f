"""The admin API: traffic split, loading, hot-swapping and unloading versions."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import shutil
from pathlib import Path

import httpx

from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, user_id
from recops_testkit.serve_helpers import admin_url, grpc_target, metric, metrics_text

HISTORY = [item_id(i) for i in (5, 6, 7)]


async def test_traffic_split_follows_put_weights(start_server) -> None:
    server = await start_server(engines={"v1": "v1", "v2": "v2"})
    async with httpx.AsyncClient() as http:
        assert (await http.get(admin_url(server, "/admin/v1/traffic"))).json() == {
            "weights": {"v1": 100, "v2": 0},
            "sticky": False,
        }
        put = await http.put(
            admin_url(server, "/admin/v1/traffic"), json={"weights": {"v1": 30, "v2": 70}}
        )
        assert put.status_code == 200
        assert put.json() == {"weights": {"v1": 30, "v2": 70}, "sticky": False}
    async with RecommenderClient(grpc_target(server)) as client:
        answers = [await client.recommend(user_id(u % 50 + 1), history=HISTORY) for u in range(300)]
    served = collections.Counter(a.version for a in answers)
    assert set(served) == {"v1", "v2"}
    assert served["v2"] > served["v1"]  # 70% against 30%: far beyond chance at 300 draws


async def test_sticky_split_keeps_each_user_on_one_version(start_server) -> None:
    server = await start_server(engines={"v1": "v1", "v2": "v2"})
    async with httpx.AsyncClient() as http:
        put = await http.put(
            admin_url(server, "/admin/v1/traffic"),
            json={"weights": {"v1": 50, "v2": 50}, "sticky": True},
        )
        assert put.status_code == 200
    async with RecommenderClient(grpc_target(server)) as client:
        seen: dict[str, set[str]] = collections.defaultdict(set)
        for _ in range(4):
            for u in range(1, 31):
                seen[user_id(u)].add((await client.recommend(user_id(u), history=HISTORY)).version)
    assert all(len(versions) == 1 for versions in seen.values())
    assert {v for versions in seen.values() for v in versions} == {"v1", "v2"}


async def test_bad_traffic_updates_are_refused_and_change_nothing(start_server) -> None:
    server = await start_server(engines={"v1": "v1", "v2": "v2"})
    async with httpx.AsyncClient() as http:
        for body, field in (
            ({"weights": {"v1": 50, "v9": 50}}, "weights.v9"),
            ({"weights": {"v1": 50, "v2": 40}}, "weights"),
            ({"weights": {"v1": 100.0}}, "weights.v1"),
            ({"weights": []}, "weights"),
        ):
            reply = await http.put(admin_url(server, "/admin/v1/traffic"), json=body)
            assert reply.status_code == 400, body
            assert reply.json()["error"]["message"].startswith(field)
        current = await http.get(admin_url(server, "/admin/v1/traffic"))
    assert current.json()["weights"] == {"v1": 100, "v2": 0}


async def test_corrupt_artifact_is_refused_while_the_old_version_serves(
    start_server, engines_dir: Path, tmp_path: Path
) -> None:
    server = await start_server()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(engines_dir / "v2", corrupt)
    with (corrupt / "model.onnx").open("r+b") as artifact:
        artifact.seek(100)
        artifact.write(b"\x00garbage\x00")
    # Id maps of another model (fewer items), with a manifest that vouches for them.
    mismatched = tmp_path / "mismatched"
    shutil.copytree(engines_dir / "v2", mismatched)
    id_maps = json.loads((mismatched / "id_maps.json").read_text())
    id_maps["items"] = id_maps["items"][:100]
    id_maps["popular_items"] = [i for i in id_maps["popular_items"] if i <= 100]
    (mismatched / "id_maps.json").write_text(json.dumps(id_maps))
    manifest = json.loads((mismatched / "manifest.json").read_text())
    manifest["files"]["id_maps.json"] = hashlib.sha256(
        (mismatched / "id_maps.json").read_bytes()
    ).hexdigest()
    (mismatched / "manifest.json").write_text(json.dumps(manifest))
    async with httpx.AsyncClient() as http:
        for folder in (corrupt, mismatched):
            reply = await http.post(
                admin_url(server, "/admin/v1/versions"),
                json={"version": "v1", "engineDir": str(folder)},
            )
            assert reply.status_code == 422
            assert reply.json()["error"]["code"] == "FAILED_PRECONDITION"
        missing = await http.post(
            admin_url(server, "/admin/v1/versions"), json={"version": "v3", "engineDir": ""}
        )
        assert missing.status_code == 400
        versions = (await http.get(admin_url(server, "/admin/v1/versions"))).json()["versions"]
    assert [(v["version"], v["model_version"]) for v in versions] == [("v1", "1")]
    async with RecommenderClient(grpc_target(server)) as client:
        answer = await client.recommend(user_id(1), history=HISTORY)
    assert answer.version == "v1" and answer.model_version == "1"


async def test_load_shift_and_unload_a_version(start_server, engines_dir: Path) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as http:
        added = await http.post(
            admin_url(server, "/admin/v1/versions"),
            json={"version": "v2", "engineDir": str(engines_dir / "v2")},
        )
        assert added.status_code == 201
        assert added.json()["weight"] == 0 and added.json()["ready"]
        busy = await http.delete(admin_url(server, "/admin/v1/versions/v1"))
        assert busy.status_code == 422  # still has traffic
        await http.put(admin_url(server, "/admin/v1/traffic"), json={"weights": {"v2": 100}})
        gone = await http.delete(admin_url(server, "/admin/v1/versions/v1"))
        assert gone.status_code == 200
        unknown = await http.delete(admin_url(server, "/admin/v1/versions/v1"))
        assert unknown.status_code == 404
    async with RecommenderClient(grpc_target(server)) as client:
        assert (await client.recommend(user_id(1), history=HISTORY)).version == "v2"
    text = await metrics_text(server)
    assert metric(text, "recops_model_info", version="v2", model_version="2") == 1
    assert metric(text, "recops_model_info", version="v1") == 0


async def test_hot_swap_under_load_fails_no_request(start_server, engines_dir: Path) -> None:
    server = await start_server()
    codes: collections.Counter[str] = collections.Counter()
    model_versions: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    async def traffic(client: RecommenderClient, worker: int) -> None:
        while not stop.is_set():
            try:
                answer = await client.recommend(user_id(worker + 1), history=HISTORY)
                codes["OK"] += 1
                model_versions[answer.model_version] += 1
            except Exception as exc:  # any failure is what this test looks for
                codes[type(exc).__name__] += 1

    async with RecommenderClient(grpc_target(server)) as client, httpx.AsyncClient() as http:
        workers = [asyncio.create_task(traffic(client, w)) for w in range(16)]
        await asyncio.sleep(0.3)
        for folder in ("v2", "v1", "v2"):  # swap the engine behind "v1" three times
            swap = await http.post(
                admin_url(server, "/admin/v1/versions"),
                json={"version": "v1", "engineDir": str(engines_dir / folder)},
                timeout=30,
            )
            assert swap.status_code == 201
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*workers)
    assert set(codes) == {"OK"}, codes
    assert model_versions["1"] > 0 and model_versions["2"] > 0
