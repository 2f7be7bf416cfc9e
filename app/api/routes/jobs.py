"""Job routes: create, list, read, cancel, resume, delete.

Each route opens one short session, builds its answer inside it and returns once it has closed;
the broker is only called with no connection held. A route that changes a job answers with the
job as its own conditional UPDATE left it (`app.jobs` returns it), not with a re-read that may
already show another request's change. A lost race is 409 naming the status the job has now;
a job deleted meanwhile is 404. Only the request whose UPDATE queued the job enqueues it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app import dataset_revisions, jobs
from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.api.limits import MAX_PAGE_OFFSET
from app.api.views import job_public, job_summary
from app.artifacts import delete_job_files
from app.auth import Caller
from app.config import get_settings
from app.db import session_scope
from app.errors import APIError, errors, not_found
from app.models import Job, JobStatus
from app.queue import enqueue_run
from app.schemas import JobCreate, JobPublic, JobsPublic
from app.storage import get_storage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/jobs", tags=["jobs"], **AUTHENTICATED)


def _too_many(exc: jobs.TooManyActiveJobs) -> APIError:
    return APIError(429, "too_many_active_jobs", str(exc), headers={"Retry-After": "60"})


def _enqueue_or_fail(job_id: uuid.UUID) -> None:
    """Enqueue a committed job; if the broker refuses, fail the job visibly instead of losing it."""
    try:
        enqueue_run(job_id)
    except Exception as exc:  # kombu raises many connection error types
        log.warning("could not enqueue job %s: %s", job_id, exc)
        with session_scope() as session:
            if not jobs.fail_queued(session, job_id, "broker_unavailable", f"the job queue is unreachable: {exc}") \
                    and jobs.current_status(session, job_id) is None:
                raise not_found(f"job {str(job_id)!r}") from exc  # deleted meanwhile
        raise APIError(503, "broker_unavailable",
                       f"job {job_id} was saved but the queue is unreachable; "
                       "resume it once the broker is back") from exc


@router.post("", status_code=201, response_model=JobPublic, responses=errors(400, 404, 409, 413, 422, 429, 503))
def create_job(body: JobCreate, caller: CallerDep) -> JobPublic:
    """Submit a task as the caller's job. The job is stored first, then queued for a worker;
    429 `too_many_active_jobs` if the caller already has MAX_ACTIVE_JOBS_PER_OWNER queued or running.
    With `from_job`, the job trains on that job's data (copied, no teacher calls for data); 404 if the
    caller may not see that job, 409 `no_data` if its data stages have not all succeeded."""
    with session_scope() as session:
        try:
            if body.from_job is not None:
                job = _create_from_job(session, body, caller)
            else:
                job = jobs.create_job(session, body.to_spec(), caller.owner,
                                      max_active=get_settings().max_active_jobs_per_owner)
        except jobs.TooManyActiveJobs as exc:
            raise _too_many(exc) from None
        reply = job_public(job)
    _enqueue_or_fail(reply.id)
    return reply


def _create_from_job(session: Session, body: JobCreate, caller: Caller) -> Job:
    """A job that trains on the data of the job `body.from_job` names, with its data copied."""
    assert body.from_job is not None
    source = load_job(session, body.from_job, caller)
    if not dataset_revisions.has_data(source):
        raise APIError(409, "no_data", f"job {source.id} has no complete data set to train on (its data stages "
                                       "have not all succeeded)")
    spec = body.retrain_spec(source.spec, dataset_revisions.current_revision(session, source.id))
    job = jobs.create_from_job(session, source, spec, caller.owner,
                               max_active=get_settings().max_active_jobs_per_owner)
    dataset_revisions.copy_data(session, get_storage(), source, job.id)
    return job


@router.get("", response_model=JobsPublic, responses=errors(422))
def list_jobs(
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)] = 0,
) -> JobsPublic:
    """The caller's jobs (everyone's for an admin), newest first."""
    with session_scope() as session:
        rows, total = jobs.newest_jobs(session, limit, offset, owner=None if caller.admin else caller.owner)
        return JobsPublic(items=[job_summary(j) for j in rows], total=total)


@router.get("/{job_id}", response_model=JobPublic, responses=errors(404, 422))
def get_job(job_id: str, caller: CallerDep) -> JobPublic:
    """One job with its spec and the state of each stage."""
    with session_scope() as session:
        return job_public(load_job(session, job_id, caller))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=errors(404, 409, 422))
def cancel_job(job_id: str, caller: CallerDep) -> JobPublic:
    """Cancel a queued or running job. A running one stops at its next heartbeat (seconds).
    The answer is the job as this cancel left it; 409 `job_finished` if it had already finished."""
    with session_scope() as session:
        job_uuid = load_job(session, job_id, caller).id  # another owner's job is a 404 like a missing one
        try:
            job = jobs.cancel(session, job_uuid)
        except jobs.JobNotFound:
            raise not_found(f"job {job_id!r}") from None
        except jobs.IllegalTransition as exc:
            raise APIError(409, "job_finished", f"job {job_uuid} is already {exc.current}") from exc
        return job_public(job)


@router.post("/{job_id}/resume", response_model=JobPublic, responses=errors(404, 409, 422, 429, 503))
def resume_job(job_id: str, caller: CallerDep) -> JobPublic:
    """Retry a failed or canceled job from the stage where it stopped, or carry a job that
    stopped after its data (`until: data`) on to training. The answer is the job as this resume
    left it (queued); 409 `not_resumable` if it is active or has nothing left to run."""
    with session_scope() as session:
        job = load_job(session, job_id, caller, lock=True)  # concurrent resumes take turns; later ones find it queued
        try:
            job = jobs.resume(session, job, max_active=get_settings().max_active_jobs_per_owner)
        except jobs.TooManyActiveJobs as exc:
            raise _too_many(exc) from None
        except jobs.JobNotFound:
            raise not_found(f"job {job_id!r}") from None
        except jobs.IllegalTransition as exc:
            reason = "is still active" if exc.current in ("queued", "running") else "has nothing left to run"
            raise APIError(409, "not_resumable", f"job {job.id} {reason} (status {exc.current})") from exc
        reply = job_public(job)
    _enqueue_or_fail(reply.id)  # committed, and moved by this request alone
    return reply


@router.delete("/{job_id}", status_code=204, responses=errors(404, 409, 422))
def delete_job(job_id: str, caller: CallerDep) -> Response:
    """Delete a finished job with its artifacts. Cancel an active job first."""
    with session_scope() as session:
        job = load_job(session, job_id, caller, lock=True)  # a racing cancel or resume waits, then finds no job
        if not JobStatus(job.status).finished:
            raise APIError(409, "job_active", f"job {job.id} is {job.status}; cancel it before deleting")
        job_uuid = job.id
        session.delete(job)
    delete_job_files(get_storage(), job_uuid)
    return Response(status_code=204)
