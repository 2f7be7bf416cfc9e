"""Per-stage records of a job: start, progress, finish. (Job *status* is written only in app.jobs.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.models import Job, JobStage, StageStatus
from app.stage_plan import MODEL_STAGES

#: The key of a running stage's metrics that holds its items finished per minute in this run.
ITEMS_PER_MIN = "items_per_min"


def pending_stages(session: Session, job_id: uuid.UUID) -> list[JobStage]:
    """The job's stages that have not succeeded yet, in order."""
    return list(
        session.execute(
            select(JobStage)
            .where(JobStage.job_id == job_id, JobStage.status != StageStatus.SUCCEEDED.value)
            .order_by(JobStage.position)
        ).scalars()
    )


def stage_results(session: Session, job_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Metrics of the job's finished stages, by stage name."""
    rows = session.execute(
        select(JobStage.name, JobStage.metrics).where(
            JobStage.job_id == job_id, JobStage.status == StageStatus.SUCCEEDED.value
        )
    )
    return {name: metrics or {} for name, metrics in rows}


def _update_stage(session: Session, job_id: uuid.UUID, name: str, **values: Any) -> None:
    session.execute(update(JobStage).where(JobStage.job_id == job_id, JobStage.name == name).values(**values))


def _update_job(session: Session, job_id: uuid.UUID, **values: Any) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now(), **values))


def start_stage(session: Session, job_id: uuid.UUID, name: str, job_progress: float) -> None:
    """Mark a stage running and make it the job's current stage."""
    _update_stage(session, job_id, name, status=StageStatus.RUNNING.value, progress=0.0, done=None,
                  total=None, error_message=None, started_at=func.now(), finished_at=None)
    _update_job(session, job_id, stage=name, progress=job_progress)


def record_progress(session: Session, job_id: uuid.UUID, name: str, done: int, total: int, job_progress: float,
                    fraction: float | None = None, items_per_min: float | None = None) -> None:
    """Store `done` of `total` items for the stage (its progress is `fraction` when given, e.g.
    with answers in flight counted in part), its items per minute, and the job's overall progress."""
    if fraction is None:
        fraction = min(1.0, done / total) if total > 0 else 0.0
    values: dict[str, Any] = {"done": done, "total": total, "progress": min(1.0, max(0.0, fraction))}
    if items_per_min is not None:
        values["metrics"] = JobStage.metrics.op("||", return_type=JSONB)(
            func.jsonb_build_object(ITEMS_PER_MIN, items_per_min))
    _update_stage(session, job_id, name, **values)
    _update_job(session, job_id, progress=job_progress)


def items_per_min(status: str, metrics: dict[str, Any] | None) -> float | None:
    """A running stage's items finished per minute in this run, as its last progress report had it."""
    if status != StageStatus.RUNNING.value or not metrics:
        return None
    value = metrics.get(ITEMS_PER_MIN)
    return float(value) if isinstance(value, int | float) else None


def record_live_metrics(session: Session, job_id: uuid.UUID, name: str, metrics: dict[str, Any]) -> None:
    """Store what a running stage has measured so far (its final metrics replace it)."""
    _update_stage(session, job_id, name, metrics=metrics)


def finish_stage(
    session: Session,
    job_id: uuid.UUID,
    name: str,
    status: StageStatus,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close a stage with its outcome, metrics and error text."""
    values: dict[str, Any] = {"status": status.value, "finished_at": func.now(), "error_message": error}
    if metrics is not None:
        values["metrics"] = metrics
    if status is StageStatus.SUCCEEDED:
        values["progress"] = 1.0
    _update_stage(session, job_id, name, **values)


def stage_eta(status: str, progress: float, started_at: datetime | None, now: datetime) -> float | None:
    """Seconds a running stage has left at its pace so far; None before there is a pace to go by."""
    if status != StageStatus.RUNNING.value or started_at is None or not 0 < progress < 1:
        return None
    elapsed = (now - started_at).total_seconds()
    return round(max(0.0, elapsed * (1 - progress) / progress), 1)


def hold_after_data(session: Session, job_id: uuid.UUID) -> None:
    """Make a job stop after its data stages (as `until: data` does): its model stages that have
    not run are removed, so the job ends `succeeded` with its data, and a resume trains it."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.spec = {**job.spec, "until": "data"}
    for stage in list(job.stages):
        if stage.name in MODEL_STAGES and stage.status == StageStatus.PENDING.value:
            job.stages.remove(stage)
    session.flush()

