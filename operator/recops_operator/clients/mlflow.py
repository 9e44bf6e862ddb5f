"""MLflow over its REST API (the operator cannot import mlflow).

The trainer tags its run with ``recops.training_run = <namespace>/<name>`` and writes the
offline metrics and the gate verdict (the team's MLflow conventions); this client finds
that run and turns it into typed results, and on promotion points the registry's
``champion`` alias at the new version. RecModels may name different tracking servers, so
every call takes the tracking URI. The operator's own credentials (read once) go only to
its configured tracking server: a RecModel that names another server is called without
them, or a tenant could collect them with a listener of its own (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from pydantic import BaseModel

from recops_contracts.tracking import ALIAS_CANDIDATE, ALIAS_CHAMPION, TAG_TRAINING_RUN
from recops_operator.api.tracking import TrainingResult
from recops_operator.settings import server_origin


class MlflowError(Exception):
    """MLflow could not be reached or answered with an error."""


def mlflow_auth(env: Mapping[str, str]) -> tuple[httpx.Auth | None, dict[str, str]]:
    """Basic auth and headers from the MLFLOW_TRACKING_* variables MLflow's clients read."""
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    token = env.get("MLFLOW_TRACKING_TOKEN")
    auth = httpx.BasicAuth(user, password) if user and password else None
    return auth, ({"Authorization": f"Bearer {token}"} if token else {})


class MlflowRestClient:
    """One connection pool for every tracking server the operator talks to.

    ``auth`` and ``headers`` (the operator's credentials) are sent only to ``home``, the
    operator's configured tracking server; without ``home`` they are sent nowhere.
    """

    def __init__(
        self,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        home: str | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(timeout=timeout)
        self._auth = auth
        self._headers = dict(headers or {})
        self._home = server_origin(home) if home else None

    def _credentials(self, url: str) -> tuple[httpx.Auth, dict[str, str]]:
        # httpx.Auth() itself adds nothing to a request.
        if self._home is not None and server_origin(url) == self._home:
            return self._auth or httpx.Auth(), self._headers
        return httpx.Auth(), {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, tracking_uri: str, path: str, body: dict[str, object]) -> httpx.Response:
        uri = tracking_uri.rstrip("/")
        url = f"{uri}/api/2.0/mlflow/{path}"
        auth, headers = self._credentials(url)
        try:
            return await self._client.post(url, json=body, auth=auth, headers=headers)
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {uri} is unreachable: {exc!r}") from exc

    async def _search(self, tracking_uri: str, path: str, body: dict[str, object]) -> bytes:
        rsp = await self._post(tracking_uri, path, body)
        if rsp.status_code >= 400:
            raise MlflowError(f"MLflow {path} answered {rsp.status_code}: {rsp.text[:300]}")
        return rsp.content

    async def _experiment_ids(self, tracking_uri: str) -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            body: dict[str, object] = {"max_results": 1000}
            if token:
                body["page_token"] = token
            page = _ExperimentsPage.model_validate_json(
                await self._search(tracking_uri, "experiments/search", body)
            )
            ids += [e.experiment_id for e in page.experiments]
            token = page.next_page_token
            if not token:
                return ids

    async def find_training_result(
        self, tracking_uri: str, training_run: str
    ) -> TrainingResult | None:
        """The newest run tagged with ``training_run`` ("<namespace>/<name>"), or None."""
        experiment_ids = await self._experiment_ids(tracking_uri)
        if not experiment_ids:
            return None
        escaped = training_run.replace("'", "\\'")
        page = _RunsPage.model_validate_json(
            await self._search(
                tracking_uri,
                "runs/search",
                {
                    "experiment_ids": experiment_ids,
                    "filter": f"tags.`{TAG_TRAINING_RUN}` = '{escaped}'",
                    "order_by": ["attributes.start_time DESC"],
                    "max_results": 1,
                },
            )
        )
        if not page.runs:
            return None
        run = page.runs[0]
        return TrainingResult(
            run_id=run.info.run_id,
            status=run.info.status,
            metrics={m.key: m.value for m in run.data.metrics},
            tags={t.key: t.value for t in run.data.tags},
            steps={m.key: m.step for m in run.data.metrics},
            logged_ms={m.key: m.timestamp for m in run.data.metrics},
            start_ms=run.info.start_time,
        )

    async def move_champion(self, tracking_uri: str, model: str, version: str) -> None:
        """Point ``champion`` at ``version`` of registered ``model`` (idempotent)."""
        body: dict[str, object] = {"name": model, "alias": ALIAS_CHAMPION, "version": version}
        rsp = await self._post(tracking_uri, "registered-models/alias", body)
        if rsp.status_code >= 400:
            raise MlflowError(
                f"setting {model} alias {ALIAS_CHAMPION} to version {version}: MLflow answered "
                f"{rsp.status_code}: {rsp.text[:300]}"
            )
        await self._retire_candidate(tracking_uri, model, version)

    async def _retire_candidate(self, tracking_uri: str, model: str, version: str) -> None:
        """Deletes ``candidate`` when it points at the promoted version: it is the champion
        now, and one version under both aliases reads as a rollout still to come."""
        url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias"
        alias = {"name": model, "alias": ALIAS_CANDIDATE}
        auth, headers = self._credentials(url)
        try:
            rsp = await self._client.get(url, params=alias, auth=auth, headers=headers)
            if _alias_missing(rsp):
                return  # no candidate alias
            if rsp.status_code < 400:
                pointed = str(rsp.json().get("model_version", {}).get("version", ""))
                if pointed != version:
                    return  # a newer candidate: still to roll out
                # MLflow reads a DELETE's parameters from its JSON body, not the query.
                rsp = await self._client.request(
                    "DELETE", url, json=alias, auth=auth, headers=headers
                )
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {url} is unreachable: {exc!r}") from exc
        if rsp.status_code >= 400:
            raise MlflowError(
                f"retiring {model} alias {ALIAS_CANDIDATE} from version {version}: MLflow "
                f"answered {rsp.status_code}: {rsp.text[:300]}"
            )


def _alias_missing(rsp: httpx.Response) -> bool:
    """MLflow answers a missing alias with 404 (RESOURCE_DOES_NOT_EXIST) or, on the SQL
    store, with 400 INVALID_PARAMETER_VALUE "... alias candidate not found"."""
    if rsp.status_code == 404:
        return True
    return rsp.status_code == 400 and "not found" in rsp.text


class _Experiment(BaseModel):
    experiment_id: str


class _ExperimentsPage(BaseModel):
    experiments: list[_Experiment] = []
    next_page_token: str | None = None


class _RunInfo(BaseModel):
    run_id: str
    status: str = ""
    start_time: int | None = None


class _Metric(BaseModel):
    key: str
    value: float
    step: int = 0
    timestamp: int = 0


class _Tag(BaseModel):
    key: str
    value: str


class _RunData(BaseModel):
    metrics: list[_Metric] = []
    tags: list[_Tag] = []


class _Run(BaseModel):
    info: _RunInfo
    data: _RunData = _RunData()


class _RunsPage(BaseModel):
    runs: list[_Run] = []
