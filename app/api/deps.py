"""Shared route dependencies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from app.db import get_session
from app.errors import not_found
from app.models import Job

SessionDep = Annotated[Session, Depends(get_session)]


def parse_job_id(job_id: str) -> uuid.UUID:
    """A job id from the path; anything that is not a UUID is simply an unknown job."""
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise not_found(f"job {job_id!r}") from None


def load_job(session: Session, job_id: str, *, lock: bool = False) -> Job:
    """The job with this id, or a 404."""
    query = session.query(Job).filter(Job.id == parse_job_id(job_id))
    job = (query.with_for_update() if lock else query).one_or_none()
    if job is None:
        raise not_found(f"job {job_id!r}")
    return job
