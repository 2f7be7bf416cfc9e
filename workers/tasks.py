"""Thin Celery tasks: load ids, call the pipeline, decide about redelivery."""

from __future__ import annotations

import logging
import uuid

from celery import Task

from app.config import get_settings
from app.queue import RUN_JOB_TASK
from workers import pipeline
from workers.celery_app import celery_app

log = logging.getLogger(__name__)


def _logical_queue(task: Task) -> str:
    routing_key = (task.request.delivery_info or {}).get("routing_key") or "default"
    return routing_key.removeprefix(get_settings().queue_prefix)


@celery_app.task(name=RUN_JOB_TASK, bind=True, acks_late=True, max_retries=None)
def run_job(self: Task, job_id: str) -> str:
    """Run the job's pending stages that belong to this worker's queue. Safe to deliver twice."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        log.error("dropping run_job with malformed job id %r", job_id)
        return "malformed"
    outcome = pipeline.run_job(parsed, _logical_queue(self))
    if outcome is pipeline.Outcome.BUSY:
        # Another worker holds the job. Look again once its lease could have lapsed, in case it died.
        raise self.retry(countdown=get_settings().job_lease_seconds)
    log.info("job %s: %s", job_id, outcome.value)
    return outcome.value
