"""Drift from the training data, measured by a served version and exported to Prometheus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recops_contracts.drift import THRESHOLDED, DriftThresholds
from recops_runtime.api.errors import ServiceError
from recops_runtime.tools.client import RecommenderClient
from recops_testkit.serve_engines import item_id, num_items, user_id
from recops_testkit.serve_helpers import grpc_target, metric, metrics_text


async def test_windows_of_requests_export_drift_and_trigger_on_a_shift(start_server) -> None:
    drift = DriftThresholds(window=100, consecutive=2, unknown_item_rate=0.3)
    server = await start_server(drift=drift)
    items = num_items()
    async with RecommenderClient(grpc_target(server)) as client:
        # One window of histories like the training data's, then two of mostly unknown items.
        for n in range(100):
            history = [item_id((n * 7 + j) % items + 1) for j in range(1, 6)]
            await client.recommend(user_id(n % 50 + 1), history=history, k=10)
        text = await metrics_text(server)
        assert metric(text, "recops_drift_windows_total", version="v1") == 1
        exported = {
            line.split('statistic="')[1].split('"')[0]
            for line in text.splitlines()
            if line.startswith("recops_drift{")
        }
        assert exported == {*THRESHOLDED, "coverage"}
        assert metric(text, "recops_drift", version="v1", statistic="unknown_item_rate") == 0
        assert (
            metric(text, "recops_drift_triggered", version="v1", statistic="unknown_item_rate") == 0
        )
        for n in range(200):
            history = [f"new-{n}-{j}" for j in range(4)] + [item_id(n % items + 1)]
            await client.recommend(user_id(n % 50 + 1), history=history, k=10)
    text = await metrics_text(server)
    assert metric(text, "recops_drift_windows_total", version="v1") == 3
    assert metric(text, "recops_drift", version="v1", statistic="unknown_item_rate") == 0.8
    # Two breaching windows in a row: triggered; what did not move stays quiet.
    triggered = {
        statistic: metric(text, "recops_drift_triggered", version="v1", statistic=statistic)
        for statistic in THRESHOLDED
    }
    assert triggered["unknown_item_rate"] == 1 and triggered["cold_start_share"] == 0


async def test_a_corrupt_drift_reference_is_refused_and_the_old_version_keeps_serving(
    start_server, engines_dir: Path, tmp_path: Path
) -> None:
    server = await start_server()
    broken = tmp_path / "v1-broken"
    shutil.copytree(engines_dir / "v1", broken)
    (broken / "drift_reference.npz").write_bytes(b"truncated")
    with pytest.raises(ServiceError, match=r"drift_reference\.npz is corrupt"):
        await server.registry.load_version("v1", broken)
    async with RecommenderClient(grpc_target(server)) as client:
        answer = await client.recommend(user_id(1), history=[item_id(3)], k=5)
    assert answer.version == "v1" and len(answer.items) == 5
    assert server.registry.versions["v1"].drift is not None  # the old one, still watched
