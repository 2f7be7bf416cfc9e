"""Putting unfinished jobs back on the queue when a worker starts.

Redis here keeps nothing on disk, and a worker can die holding a job, so on start every worker
re-enqueues the queued and running jobs (running ones delayed until their lease can lapse) whose
next stage belongs to one of its queues: a gpu worker restarted after a crash picks its training
job up again without waiting for a default worker to restart. Duplicates are harmless: a job is
claimed with a conditional UPDATE and runs once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import job_stages
from app.db import session_scope
from app.models import Job, JobStatus
from app.queue import enqueue_run


def recover_jobs(queues: Collection[str] = ("default",)) -> int:
    """Re-enqueue unfinished jobs whose next stage runs on one of `queues` (logical names);
    returns how many."""
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.lease_expires_at).where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
        ).all()
        next_queue = {job_id: _next_queue(session, job_id) for job_id, _, _ in rows}
    now = datetime.now(UTC)
    count = 0
    for job_id, status, lease in rows:
        if next_queue[job_id] not in queues:
            continue
        delay = (0.0 if status == JobStatus.QUEUED.value or lease is None
                 else max(0.0, (lease - now).total_seconds() + 1))
        enqueue_run(job_id, next_queue[job_id], countdown=delay or None)
        count += 1
    return count


def _next_queue(session: Session, job_id: uuid.UUID) -> str:
    """The queue of the job's first unfinished stage (`default` for names this worker lacks)."""
    from workers.stages import REGISTRY

    pending = job_stages.pending_stages(session, job_id)
    stage = REGISTRY.get(pending[0].name) if pending else None
    return stage.queue if stage is not None else "default"
