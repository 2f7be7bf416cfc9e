"""Turning ORM rows into API bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import object_session

from app import slots
from app.config import get_settings
from app.job_stages import ITEMS_PER_MIN, items_per_min, stage_eta
from app.models import Artifact, Job, JobStage, JobStatus
from app.schemas import ArtifactPublic, JobError, JobPublic, JobSummary, StagePublic


def job_summary(job: Job) -> JobSummary:
    error = JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
    return JobSummary(
        id=job.id, owner=job.owner, task=job.task, status=job.status, stage=job.stage,
        progress=job.progress, error=error, created_at=job.created_at, updated_at=job.updated_at,
        started_at=job.started_at, finished_at=job.finished_at,
    )


def stage_public(stage: JobStage, now: datetime | None = None) -> StagePublic:
    now = now or datetime.now(UTC)
    metrics = {key: value for key, value in (stage.metrics or {}).items() if key != ITEMS_PER_MIN}
    return StagePublic(
        name=stage.name, status=stage.status, progress=stage.progress, done=stage.done, total=stage.total,
        metrics=metrics, error=stage.error_message, started_at=stage.started_at,
        finished_at=stage.finished_at, eta_seconds=stage_eta(stage.status, stage.progress, stage.started_at, now),
        items_per_min=items_per_min(stage.status, stage.metrics),
    )


def succeeded_metrics(job: Job) -> dict[str, dict[str, Any]]:
    """Metrics of the job's succeeded stages, by stage name."""
    return {s.name: s.metrics or {} for s in job.stages if s.status == "succeeded"}


def job_warnings(done: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Problems the stages reported, in stage order (e.g. tools curate found no example of, a weak
    teacher)."""
    return [warning for metrics in done.values() for warning in metrics.get("warnings") or []]


def queue_place(job: Job) -> dict[str, Any]:
    """`queue_position` and `expected_start_at` of a job waiting for a default worker (both None
    otherwise), read in the session the job was loaded in."""
    session = object_session(job)
    place = None
    if job.status == JobStatus.QUEUED.value and session is not None:
        place = slots.queue_place(session, job.id, get_settings().default_worker_slots)
    if place is None:
        return {"queue_position": None, "expected_start_at": None}
    return {"queue_position": place.position, "expected_start_at": place.expected_start_at}


def job_public(job: Job) -> JobPublic:
    done = succeeded_metrics(job)
    return JobPublic(
        **job_summary(job).model_dump(), spec=job.spec,
        plan=done.get("plan", {}).get("task_spec"),
        warnings=job_warnings(done),
        stages=[stage_public(s) for s in job.stages],
        **queue_place(job),
    )


def artifact_public(artifact: Artifact) -> ArtifactPublic:
    return ArtifactPublic(
        name=artifact.name, size=artifact.size, sha256=artifact.sha256,
        url=f"/api/jobs/{artifact.job_id}/artifacts/{artifact.name}",
    )
