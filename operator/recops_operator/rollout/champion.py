"""Moving the MLflow registry's ``champion`` alias on promotion, through MLflow's REST API.

The operator cannot import mlflow; the alias call is one POST. Credentials come from the
same MLFLOW_* environment variables the MLflow client reads.
"""

from __future__ import annotations

import os

import httpx

CHAMPION = "champion"


class ChampionError(Exception):
    """MLflow could not be reached or refused the alias."""


def _auth() -> tuple[httpx.Auth | None, dict[str, str]]:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    auth = httpx.BasicAuth(user, password) if user and password else None
    return auth, ({"Authorization": f"Bearer {token}"} if token else {})


async def move_champion(tracking_uri: str, model: str, version: str, timeout: float = 10.0) -> None:
    """Point ``champion`` at ``version`` of ``model`` (idempotent)."""
    auth, headers = _auth()
    async with httpx.AsyncClient(timeout=timeout, auth=auth, headers=headers) as client:
        try:
            rsp = await client.post(
                f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias",
                json={"name": model, "alias": CHAMPION, "version": version},
            )
        except httpx.HTTPError as exc:
            raise ChampionError(f"MLflow at {tracking_uri} is unreachable: {exc!r}") from exc
    if rsp.status_code >= 400:
        raise ChampionError(
            f"setting {model} alias {CHAMPION} to version {version}: MLflow answered "
            f"{rsp.status_code}: {rsp.text[:300]}"
        )
