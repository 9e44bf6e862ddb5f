"""Fixtures for the runtime's integration tests: engine folders and in-process servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from recops_runtime.scoring.model_version import EngineLoader
from recops_runtime.serve_settings import BatchingSettings, ServeSettings
from recops_runtime.server import RecommendationServer
from recops_testkit.serve_engines import build_real_engines


@pytest.fixture(scope="session")
def engines_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines")
    build_real_engines(root)
    return root


@pytest.fixture
async def start_server(engines_dir: Path, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Starts in-process servers on 127.0.0.1 (any free ports); stops them after the test."""
    servers: list[RecommendationServer] = []

    async def start(
        engines: dict[str, str] | None = None,
        batching: BatchingSettings | None = None,
        loader: EngineLoader | None = None,
        **overrides: object,
    ) -> RecommendationServer:
        settings = ServeSettings(
            engines={k: engines_dir / v for k, v in (engines or {"v1": "v1"}).items()},
            host="127.0.0.1",
            grpc_port=0,
            http_port=0,
            metrics_port=0,
            admin_port=0,
            batching=batching or BatchingSettings(),
            **overrides,  # type: ignore[arg-type]
        )
        server = RecommendationServer(settings, loader)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
