"""Putting unfinished jobs back on the queue when a worker starts.

Redis here keeps nothing on disk, and a worker can die holding a job, so on start the default
worker re-enqueues every queued job and every running one (delayed until its lease can lapse).
Duplicates are harmless: a job is claimed with a conditional UPDATE and runs once.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from app.db import session_scope
from app.models import Job, JobStatus
from app.queue import enqueue_run


def recover_jobs() -> int:
    """Re-enqueue unfinished jobs; returns how many."""
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.lease_expires_at).where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
        ).all()
    now = datetime.now(timezone.utc)
    for job_id, status, lease in rows:
        delay = 0.0 if status == JobStatus.QUEUED.value or lease is None else max(0.0, (lease - now).total_seconds() + 1)
        enqueue_run(job_id, countdown=delay or None)
    return len(rows)
