"""Thin Celery tasks: load ids, call the pipeline, decide about redelivery."""

from __future__ import annotations

import logging
import uuid

from celery import Task
from sqlalchemy.orm import Session

from app import slots
from app.config import get_settings
from app.queue import RUN_JOB_TASK
from workers import pipeline
from workers.celery_app import celery_app
from workers.outages import describe, is_outage
from workers.stages import REGISTRY

log = logging.getLogger(__name__)

#: How soon a delivery that found the database (or another service) down is tried again.
OUTAGE_RETRY_SECONDS = 5


def _logical_queue(task: Task) -> str:
    routing_key = (task.request.delivery_info or {}).get("routing_key") or "default"
    return routing_key.removeprefix(get_settings().queue_prefix)


#: The stages that run on the default queue, whose slots are shared between owners.
_DEFAULT_STAGES = frozenset(name for name, stage in REGISTRY.items() if stage.queue == "default")


def _fair_share(session: Session, job_id: uuid.UUID) -> bool:
    """Whether the job may take a default slot now, or should leave it to another owner's job."""
    return slots.admit(session, job_id, get_settings().default_worker_slots, _DEFAULT_STAGES)


@celery_app.task(name=RUN_JOB_TASK, bind=True, acks_late=True, max_retries=None)
def run_job(self: Task, job_id: str, defers: int = 0) -> str:
    """Run the job's pending stages that belong to this worker's queue. Safe to deliver twice.

    On the default queue a job whose owner already has more than its share of the slots while
    another owner's job waits is offered again a little later (it stays queued), `defers` times
    at most MAX_DEFERS."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        log.error("dropping run_job with malformed job id %r", job_id)
        return "malformed"
    queue = _logical_queue(self)
    fair = queue == "default" and defers < slots.MAX_DEFERS
    try:
        outcome = pipeline.run_job(parsed, queue, admit=_fair_share if fair else None)
    except Exception as exc:
        if not is_outage(exc):
            raise
        # Claiming (or giving up a run) needs the database; try again rather than drop the message.
        log.warning("job %s waits for a service to come back: %s", job_id, describe(exc))
        raise self.retry(countdown=OUTAGE_RETRY_SECONDS) from exc
    if outcome is pipeline.Outcome.DEFERRED:
        log.info("job %s waits for another owner's job to take a slot first (%d)", job_id, defers + 1)
        raise self.retry(countdown=slots.DEFER_SECONDS, kwargs={"defers": defers + 1})
    if outcome is pipeline.Outcome.BUSY:
        # Another worker holds the job. Look again once its lease could have lapsed, in case it died.
        raise self.retry(countdown=get_settings().job_lease_seconds)
    if outcome is pipeline.Outcome.INTERRUPTED:
        # The lease this run held lapses first; if the broker is what is down, the sweep re-enqueues it.
        raise self.retry(countdown=get_settings().job_lease_seconds + 1)
    log.info("job %s: %s", job_id, outcome.value)
    return outcome.value
