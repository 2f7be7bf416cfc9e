"""Putting jobs on the Celery queue. The API sends tasks by name and never imports stage code."""

from __future__ import annotations

import uuid

from celery import Celery

from app.config import get_settings

RUN_JOB_TASK = "vibetune.run_job"


def make_celery() -> Celery:
    """The Celery app shared by the API (to send) and the workers (to run)."""
    settings = get_settings()
    app = Celery("vibetune", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.queue_name("default"),
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        worker_hijack_root_logger=False,
    )
    return app


_celery: Celery | None = None


def celery_app() -> Celery:
    """The process-wide Celery app (built on first use, after settings are final)."""
    global _celery
    if _celery is None:
        _celery = make_celery()
    return _celery


def enqueue_run(job_id: uuid.UUID, queue: str = "default", countdown: float | None = None) -> None:
    """Ask a worker of `queue` to run the job. Raises if the broker cannot take the message."""
    celery_app().send_task(
        RUN_JOB_TASK,
        args=[str(job_id)],
        queue=get_settings().queue_name(queue),
        countdown=countdown,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
    )
