"""Job routes: create, list, read, cancel, resume, delete."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app import jobs
from app.api.deps import SessionDep, load_job
from app.api.views import job_public, job_summary
from app.artifacts import delete_job_files
from app.errors import APIError, errors
from app.models import Job, JobStatus
from app.queue import enqueue_run
from app.schemas import JobCreate, JobPublic, JobsPublic
from app.storage import get_storage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def _enqueue_or_fail(session: SessionDep, job: Job) -> None:
    """Enqueue a committed job; if the broker refuses, fail the job visibly instead of losing it."""
    try:
        enqueue_run(job.id)
    except Exception as exc:  # kombu raises many connection error types
        log.warning("could not enqueue job %s: %s", job.id, exc)
        jobs.fail_queued(session, job.id, "broker_unavailable", f"the job queue is unreachable: {exc}")
        session.commit()
        raise APIError(503, "broker_unavailable",
                       f"job {job.id} was saved but the queue is unreachable; "
                       "resume it once the broker is back") from exc


@router.post("", status_code=201, response_model=JobPublic, responses=errors(422, 503))
def create_job(body: JobCreate, session: SessionDep) -> JobPublic:
    """Submit a task. The job is stored first, then queued for a worker."""
    job = jobs.create_job(session, body.to_spec())
    session.commit()
    _enqueue_or_fail(session, job)
    session.refresh(job)
    return job_public(job)


@router.get("", response_model=JobsPublic, responses=errors(422))
def list_jobs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobsPublic:
    """Jobs, newest first."""
    rows, total = jobs.newest_jobs(session, limit, offset)
    return JobsPublic(items=[job_summary(j) for j in rows], total=total)


@router.get("/{job_id}", response_model=JobPublic, responses=errors(404, 422))
def get_job(job_id: str, session: SessionDep) -> JobPublic:
    """One job with its spec and the state of each stage."""
    return job_public(load_job(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=errors(404, 409, 422))
def cancel_job(job_id: str, session: SessionDep) -> JobPublic:
    """Cancel a queued or running job. A running one stops at its next heartbeat (seconds)."""
    job = load_job(session, job_id)
    try:
        jobs.cancel(session, job.id)
    except jobs.IllegalTransition as exc:
        raise APIError(409, "job_finished", f"job {job.id} is already {exc.current}") from exc
    session.commit()
    session.refresh(job)
    return job_public(job)


@router.post("/{job_id}/resume", response_model=JobPublic, responses=errors(404, 409, 422, 503))
def resume_job(job_id: str, session: SessionDep) -> JobPublic:
    """Retry a failed or canceled job from the stage where it stopped, or carry a job that
    stopped after its data (`until: data`) on to training."""
    job = load_job(session, job_id, lock=True)
    try:
        jobs.resume(session, job)
    except jobs.IllegalTransition as exc:
        reason = "is still active" if exc.current in ("queued", "running") else "has nothing left to run"
        raise APIError(409, "not_resumable", f"job {job.id} {reason} (status {exc.current})") from exc
    session.commit()
    _enqueue_or_fail(session, job)
    session.refresh(job)
    return job_public(job)


@router.delete("/{job_id}", status_code=204, responses=errors(404, 409, 422))
def delete_job(job_id: str, session: SessionDep) -> Response:
    """Delete a finished job with its artifacts. Cancel an active job first."""
    job = load_job(session, job_id, lock=True)
    if not JobStatus(job.status).finished:
        raise APIError(409, "job_active", f"job {job.id} is {job.status}; cancel it before deleting")
    session.delete(job)
    session.commit()
    delete_job_files(get_storage(), job.id)
    return Response(status_code=204)
