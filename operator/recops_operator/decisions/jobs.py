"""What a RayJob, a batch Job or a compile pod says about its progress."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from recops_contracts.engine_manifest import EngineManifest
from recops_operator.api.recmodel import EngineStatus, LatencyReport, ParityReport
from recops_operator.api.targets import TargetName


class JobState(StrEnum):
    ABSENT = "Absent"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobObservation:
    state: JobState
    message: str = ""
    start_time: str | None = None
    ray_job_id: str | None = None


ABSENT = JobObservation(JobState.ABSENT)


def observe_ray_job(obj: dict[str, Any] | None) -> JobObservation:
    """KubeRay's view: ``jobStatus`` of the Ray job and ``jobDeploymentStatus`` of the CR."""
    if obj is None:
        return ABSENT
    status = obj.get("status") or {}
    job_status = str(status.get("jobStatus") or "")
    deployment = str(status.get("jobDeploymentStatus") or "")
    message = str(status.get("message") or status.get("reason") or "")
    start = status.get("startTime")
    job_id = status.get("jobId") or (obj.get("spec") or {}).get("jobId")
    if job_status == "SUCCEEDED":
        return JobObservation(JobState.SUCCEEDED, message, start, job_id)
    if job_status in {"FAILED", "STOPPED"} or deployment in {"Failed", "ValidationFailed"}:
        reason = str(status.get("reason") or job_status or deployment)
        text = f"{reason}: {message}" if message and reason not in message else message or reason
        return JobObservation(JobState.FAILED, text, start, job_id)
    if job_status == "RUNNING" or deployment == "Running":
        return JobObservation(JobState.RUNNING, message, start, job_id)
    return JobObservation(JobState.PENDING, message, start, job_id)


def observe_batch_job(obj: dict[str, Any] | None) -> JobObservation:
    """A batch/v1 Job's view: its Complete and Failed conditions, else active pods."""
    if obj is None:
        return ABSENT
    status = obj.get("status") or {}
    start = status.get("startTime")
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in {"Complete", "SuccessCriteriaMet"}:
            return JobObservation(JobState.SUCCEEDED, str(cond.get("message") or ""), start)
        if cond.get("type") in {"Failed", "FailureTarget"}:
            text = ": ".join(p for p in (cond.get("reason"), cond.get("message")) if p)
            return JobObservation(JobState.FAILED, text or "the Job failed", start)
    if status.get("active"):
        return JobObservation(JobState.RUNNING, "", start)
    return JobObservation(JobState.PENDING, "", start)


def termination_message(pods: list[dict[str, Any]], container: str = "compile") -> str | None:
    """The termination message of the Job's succeeded container (the newest pod first)."""
    for pod in sorted(
        pods,
        key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""),
        reverse=True,
    ):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if cs.get("name") == container and terminated.get("exitCode") == 0:
                message = terminated.get("message")
                if message:
                    return str(message)
    return None


def engine_from_manifest(target: TargetName, artifact_uri: str, text: str) -> EngineStatus | None:
    """The engine's status from its manifest.json; None when the text is not a manifest.

    The manifest pins the sha256 of every engine file, so its own sha256 identifies the engine.
    """
    try:
        manifest = EngineManifest.model_validate_json(text)
    except ValidationError:
        return None
    parity = manifest.parity
    try:
        return EngineStatus(
            target=target,
            artifact_uri=artifact_uri,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            precision=manifest.precision,
            parity=ParityReport(
                max_abs_diff=parity.max_abs_diff,
                top10_overlap=parity.top10_overlap,
                ndcg10_delta=parity.ndcg10_delta,
                users=parity.users,
            )
            if parity
            else None,
            latency=[
                LatencyReport(
                    batch=lat.batch,
                    p50_ms=lat.p50_ms,
                    p99_ms=lat.p99_ms,
                    users_per_second=lat.users_per_second,
                )
                for lat in manifest.latency
            ]
            or None,
        )
    except ValidationError:
        return None
