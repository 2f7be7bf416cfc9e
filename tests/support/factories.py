"""Small helpers that create real rows for tests."""

from __future__ import annotations

import uuid
from typing import Any

from app import jobs
from app.db import session_scope
from app.models import Job
from app.schemas import JobCreate


def make_job(**body: Any) -> uuid.UUID:
    """Insert a queued job from a submission body (validated like the API does); returns its id."""
    body.setdefault("task", "sort support tickets into billing, shipping, technical")
    spec = JobCreate(**body).to_spec()
    with session_scope() as session:
        return jobs.create_job(session, spec["task"], spec).id


def load(job_id: uuid.UUID) -> Job:
    """The job with its stages, freshly read."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        _ = job.stages, job.artifacts
        return job
