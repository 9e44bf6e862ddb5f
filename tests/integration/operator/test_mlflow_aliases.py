"""After a promotion the ``candidate`` alias no longer names the promoted version, against a
real `mlflow server` (its SQL store answers a missing alias with 400, not 404)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recops_cli.quickstart.processes import free_port
from recops_operator.clients.mlflow import MlflowRestClient
from recops_testkit.processes import start_mlflow_server, stop, wait_until_ready


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    server = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(server, f"{url}/health", "mlflow server", root / "server.log")
        yield url
    finally:
        stop(server)


def _registered(url: str, name: str, aliases: dict[str, str]) -> dict[str, str]:
    """A registered model with three versions and ``aliases``; returns them read back."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(name))
    for _ in range(3):
        client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
    for alias, version in aliases.items():
        client.set_registered_model_alias(name, alias, version)
    return _aliases(url, name)


def _aliases(url: str, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return {k: str(v) for k, v in MlflowClient(url).get_registered_model(name).aliases.items()}


@pytest.mark.parametrize(
    ("name", "before", "after"),
    [
        ("promoted", {"champion": "1", "candidate": "2"}, {"champion": "2"}),
        ("newer", {"champion": "1", "candidate": "3"}, {"champion": "2", "candidate": "3"}),
        ("none", {"champion": "1"}, {"champion": "2"}),  # no candidate alias at all
    ],
)
async def test_promotion_moves_champion_and_retires_its_candidate_alias(
    mlflow_url: str, name: str, before: dict[str, str], after: dict[str, str]
) -> None:
    assert _registered(mlflow_url, name, before) == before
    client = MlflowRestClient()
    try:
        await client.move_champion(mlflow_url, name, "2")
    finally:
        await client.aclose()
    assert _aliases(mlflow_url, name) == after
