"""Shared route helpers: job ids from paths, loading a job, and how many blocking calls run at once.

Routes open their own short session (`with session_scope() as session:`), build their answer
inside it and return after it has closed, so no connection is held while FastAPI serialises the
answer, a client reads it, or a thread waits for anything else. Every database call of the API
runs in AnyIO's worker threads, and `limit_blocking_calls` makes there be no more of those than
the engine has connections: a request beyond that waits for a thread (in the event loop, holding
nothing) instead of holding a thread while it waits for a connection.
"""

from __future__ import annotations

import uuid

import anyio.to_thread
from sqlalchemy.orm import Session

from app.auth import Caller
from app.db import pool_capacity
from app.errors import not_found
from app.models import Job


def limit_blocking_calls() -> int:
    """Size AnyIO's default thread limiter (sync routes, their dependencies, `run_in_threadpool`)
    to the engine's pool (`DB_POOL_SIZE + DB_MAX_OVERFLOW`). Call it in the event loop, at startup."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = pool_capacity()
    return int(limiter.total_tokens)


def parse_job_id(job_id: str) -> uuid.UUID:
    """A job id from the path; anything that is not a UUID is simply an unknown job."""
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise not_found(f"job {job_id!r}") from None


def load_job(session: Session, job_id: str, caller: Caller, *, lock: bool = False) -> Job:
    """The job with this id if the caller may see it (theirs, or any for an admin), else a 404:
    another owner's job gets the same answer as one that does not exist."""
    query = session.query(Job).filter(Job.id == parse_job_id(job_id))
    if not caller.admin:
        query = query.filter(Job.owner == caller.owner)
    job = (query.with_for_update() if lock else query).one_or_none()
    if job is None:
        raise not_found(f"job {job_id!r}")
    return job
