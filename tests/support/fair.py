"""Jobs of several owners, for the tests of sharing the default slots."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from app import job_stages, jobs
from app.db import session_scope
from app.models import Job, JobStage, JobStatus, StageStatus
from app.schemas import JobCreate


def owned_job(owner: str, **body: Any) -> uuid.UUID:
    """A queued job of `owner`, created as the API would (not enqueued)."""
    body.setdefault("task", "sort support tickets into billing, shipping, technical")
    body.setdefault("until", "data")
    with session_scope() as session:
        return jobs.create_job(session, JobCreate(**body).to_spec(), owner=owner).id


def start(job_id: uuid.UUID, stage: str = "plan") -> str:
    """Claim the job as a worker would and start its `stage`; returns the run token."""
    with session_scope() as session:
        token = jobs.claim(session, job_id, 600)
        assert token is not None
        job_stages.start_stage(session, job_id, stage, 0.0)
        return token


def clear_queue() -> None:
    """Cancel every queued or running job: earlier tests leave some behind, and they would count
    as other owners waiting for a slot."""
    with session_scope() as session:
        ids = session.execute(select(Job.id).where(
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))).scalars().all()
        for job_id in ids:
            jobs.cancel(session, job_id)


def backdate_stage(job_id: uuid.UUID, stage: str, seconds: float) -> None:
    """Make the stage look as if it started `seconds` before it finished (or before now, running)."""
    with session_scope() as session:
        session.execute(update(JobStage).where(JobStage.job_id == job_id, JobStage.name == stage).values(
            started_at=func.coalesce(JobStage.finished_at, func.now()) - timedelta(seconds=seconds)))


def recent_runs(seconds: dict[str, float], num_examples: int = 10, count: int = 2) -> None:
    """`count` finished jobs whose stages took `seconds` (by stage name): the most recent runs
    a waiting job's expected start is reckoned from."""
    for _ in range(count):
        job_id = owned_job("history", num_examples=num_examples)
        token = start(job_id)
        with session_scope() as session:
            for name in seconds:
                job_stages.finish_stage(session, job_id, name, StageStatus.SUCCEEDED, {})
            jobs.finish(session, job_id, token, JobStatus.SUCCEEDED)
        for name, value in seconds.items():
            backdate_stage(job_id, name, value)


def half_way(job_id: uuid.UUID, stage: str, after: float) -> None:
    """The running job has done the stages before `stage`, and half of `stage` in `after` seconds."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        for earlier in job.stages:
            if earlier.name == stage:
                break
            job_stages.finish_stage(session, job_id, earlier.name, StageStatus.SUCCEEDED, {})
        job_stages.start_stage(session, job_id, stage, 0.2)
        job_stages.record_progress(session, job_id, stage, 5, 10, 0.3)
    backdate_stage(job_id, stage, after)
