"""Turning ORM rows into API bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.models import Artifact, Job, JobStage
from app.schemas import ArtifactPublic, JobError, JobPublic, JobSummary, StagePublic


def job_summary(job: Job) -> JobSummary:
    error = JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
    return JobSummary(
        id=job.id, owner=job.owner, task=job.task, status=job.status, stage=job.stage,
        progress=job.progress, error=error, created_at=job.created_at, updated_at=job.updated_at,
        started_at=job.started_at, finished_at=job.finished_at,
    )


def stage_eta(status: str, progress: float, started_at: datetime | None, now: datetime) -> float | None:
    """Seconds a running stage has left at its pace so far; None before there is a pace to go by."""
    if status != "running" or started_at is None or not 0 < progress < 1:
        return None
    elapsed = (now - started_at).total_seconds()
    return round(max(0.0, elapsed * (1 - progress) / progress), 1)


def stage_public(stage: JobStage, now: datetime | None = None) -> StagePublic:
    now = now or datetime.now(UTC)
    return StagePublic(
        name=stage.name, status=stage.status, progress=stage.progress, done=stage.done, total=stage.total,
        metrics=stage.metrics or {}, error=stage.error_message, started_at=stage.started_at,
        finished_at=stage.finished_at, eta_seconds=stage_eta(stage.status, stage.progress, stage.started_at, now),
    )


def succeeded_metrics(job: Job) -> dict[str, dict[str, Any]]:
    """Metrics of the job's succeeded stages, by stage name."""
    return {s.name: s.metrics or {} for s in job.stages if s.status == "succeeded"}


def job_warnings(done: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Problems the stages reported (e.g. a weak teacher)."""
    return done.get("teacher_check", {}).get("warnings", [])


def job_public(job: Job) -> JobPublic:
    done = succeeded_metrics(job)
    return JobPublic(
        **job_summary(job).model_dump(), spec=job.spec,
        plan=done.get("plan", {}).get("task_spec"),
        warnings=job_warnings(done),
        stages=[stage_public(s) for s in job.stages],
    )


def artifact_public(artifact: Artifact) -> ArtifactPublic:
    return ArtifactPublic(
        name=artifact.name, size=artifact.size, sha256=artifact.sha256,
        url=f"/api/jobs/{artifact.job_id}/artifacts/{artifact.name}",
    )
