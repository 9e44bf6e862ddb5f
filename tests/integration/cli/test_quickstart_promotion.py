"""The quickstart's promotion against a real MLflow registry (a sqlite file): ``champion``
moves to the promoted version and ``candidate`` leaves it, unless it names a newer one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recops_cli.quickstart.stages import promote
from recops_contracts.tracking import ALIAS_CANDIDATE, ALIAS_CHAMPION

MODEL = "movies"


@pytest.fixture
def registry(tmp_path: Path) -> tuple[str, Any]:
    """A tracking URI and its client, holding versions 1 and 2 of ``movies``."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_registered_model(MODEL)
    for version in ("1", "2"):
        source = tmp_path / f"model-{version}"
        source.mkdir()
        client.create_model_version(MODEL, source=source.as_uri())
    return uri, client


def _aliases(client: Any) -> dict[str, str]:
    """Alias -> version number, as text (MLflow answers ints)."""
    return {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


def test_promoting_the_candidate_retires_its_candidate_alias(registry: tuple[str, Any]) -> None:
    uri, client = registry
    client.set_registered_model_alias(MODEL, ALIAS_CHAMPION, "1")
    client.set_registered_model_alias(MODEL, ALIAS_CANDIDATE, "2")

    promote(uri, MODEL, "2")

    assert _aliases(client) == {ALIAS_CHAMPION: "2"}


def test_a_newer_candidate_keeps_its_alias(registry: tuple[str, Any]) -> None:
    uri, client = registry
    client.set_registered_model_alias(MODEL, ALIAS_CANDIDATE, "2")

    promote(uri, MODEL, "1")

    assert _aliases(client) == {ALIAS_CHAMPION: "1", ALIAS_CANDIDATE: "2"}


def test_a_promotion_without_a_candidate_alias_only_moves_the_champion(
    registry: tuple[str, Any],
) -> None:
    uri, client = registry
    client.set_registered_model_alias(MODEL, ALIAS_CHAMPION, "1")

    promote(uri, MODEL, "2")

    assert _aliases(client) == {ALIAS_CHAMPION: "2"}
