"""Issue 27, finding 4: the operator's MLflow credentials go only to its configured tracking
server; a listener a RecModel names (here on 127.0.0.1) never receives them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from recops_operator.clients.mlflow import MlflowRestClient, mlflow_auth
from recops_operator.controllers.context import build_context
from recops_operator.settings import OperatorSettings

CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": "operator", "MLFLOW_TRACKING_PASSWORD": "s3cret"}


class Listener:
    """An HTTP server on 127.0.0.1 that records each request's Authorization header."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Authorization"))
        return web.json_response({"experiments": [], "runs": []})


@pytest.fixture
async def listeners() -> AsyncIterator[tuple[Listener, Listener]]:
    runners, found = [], []
    for _ in range(2):
        listener = Listener()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", listener.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        listener.url = f"http://127.0.0.1:{port}"
        runners.append(runner)
        found.append(listener)
    yield found[0], found[1]
    for runner in runners:
        await runner.cleanup()


async def _ask(client: MlflowRestClient, uri: str) -> None:
    await client.find_training_result(uri, "ml/movies-g1")
    await client.move_champion(uri, "movies", "2")


async def test_a_tenants_listener_never_receives_the_operators_credentials(
    listeners: tuple[Listener, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, tenant = listeners
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    settings = OperatorSettings(mlflow_tracking_uri=home.url)
    ctx = build_context(settings, kube=None)  # type: ignore[arg-type]
    try:
        await _ask(ctx.mlflow, tenant.url)
        await _ask(ctx.mlflow, home.url + "/")
    finally:
        await ctx.mlflow.aclose()
        await ctx.prometheus.aclose()
    assert tenant.seen and all(header is None for header in tenant.seen)
    assert home.seen and all(h and h.startswith("Basic ") for h in home.seen)


async def test_a_bearer_token_stays_home_too(listeners: tuple[Listener, Listener]) -> None:
    home, tenant = listeners
    auth, headers = mlflow_auth({"MLFLOW_TRACKING_TOKEN": "t0ken"})
    client = MlflowRestClient(auth, headers, home=home.url)
    await _ask(client, tenant.url)
    await _ask(client, home.url)
    await client.aclose()
    assert all(header is None for header in tenant.seen)
    assert home.seen[0] == "Bearer t0ken"


async def test_without_a_home_server_the_credentials_go_nowhere(
    listeners: tuple[Listener, Listener],
) -> None:
    home, _ = listeners
    auth, headers = mlflow_auth(CREDENTIALS)
    client = MlflowRestClient(auth, headers)
    await _ask(client, home.url)
    await client.aclose()
    assert all(header is None for header in home.seen)
