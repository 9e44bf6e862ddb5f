"""Reading training results from MLflow's REST API (the operator cannot import mlflow).

The trainer tags its run with ``recops.training_run = <namespace>/<name>`` and writes the
offline metrics and the gate verdict (the team's MLflow conventions); this module finds
that run and turns it into typed results.
"""

from __future__ import annotations

import os

import httpx
from pydantic import BaseModel

from recops_operator.api.tracking import TAG_TRAINING_RUN, TrainingResult


class MlflowError(Exception):
    """MLflow could not be reached or answered with an error."""


def _auth_from_env() -> httpx.Auth | None:
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if user and password:
        return httpx.BasicAuth(user, password)
    return None


def _headers_from_env() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class MlflowReader:
    """Finds the MLflow run of a TrainingRun; one instance per tracking URI."""

    def __init__(self, tracking_uri: str, timeout: float = 10.0) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.tracking_uri,
            timeout=timeout,
            auth=_auth_from_env(),
            headers=_headers_from_env(),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, object]) -> bytes:
        try:
            rsp = await self._client.post(f"/api/2.0/mlflow/{path}", json=body)
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {self.tracking_uri} is unreachable: {exc}") from exc
        if rsp.status_code >= 400:
            raise MlflowError(f"MLflow {path} answered {rsp.status_code}: {rsp.text[:300]}")
        return rsp.content

    async def _experiment_ids(self) -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            body: dict[str, object] = {"max_results": 1000}
            if token:
                body["page_token"] = token
            page = _ExperimentsPage.model_validate_json(
                await self._post("experiments/search", body)
            )
            ids += [e.experiment_id for e in page.experiments]
            token = page.next_page_token
            if not token:
                return ids

    async def find_training_result(self, training_run: str) -> TrainingResult | None:
        """The newest run tagged with ``training_run`` ("<namespace>/<name>"), or None."""
        experiment_ids = await self._experiment_ids()
        if not experiment_ids:
            return None
        escaped = training_run.replace("'", "\\'")
        page = _RunsPage.model_validate_json(
            await self._post(
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
        )


class _Experiment(BaseModel):
    experiment_id: str


class _ExperimentsPage(BaseModel):
    experiments: list[_Experiment] = []
    next_page_token: str | None = None


class _RunInfo(BaseModel):
    run_id: str
    status: str = ""


class _Metric(BaseModel):
    key: str
    value: float


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
