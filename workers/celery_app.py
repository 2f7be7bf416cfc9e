"""The Celery app the workers run, with the process hooks they need."""

from __future__ import annotations

import logging

from celery.signals import worker_process_init, worker_ready

from app.config import get_settings
from app.db import reset_engine
from app.queue import celery_app as _shared_app

log = logging.getLogger(__name__)

celery_app = _shared_app()
celery_app.conf.include = ["workers.tasks"]


@worker_process_init.connect
def _fresh_engine_per_process(**_: object) -> None:
    # Connections must not be shared across a fork.
    reset_engine()


@worker_ready.connect
def _recover_on_start(sender: object = None, **_: object) -> None:
    from workers.recovery import Sweeper, recover_jobs, redis_run_id

    consumer = getattr(sender, "consumer", None) or sender
    consumed = {q.name for q in getattr(getattr(consumer, "task_consumer", None), "queues", [])}
    settings = get_settings()
    mine = [queue for queue in ("default", "gpu") if settings.queue_name(queue) in consumed]
    if mine:
        log.info("re-enqueued %d unfinished jobs", recover_jobs(mine))
        Sweeper(mine, settings.recovery_sweep_seconds, redis_run_id(settings.redis_url)).start()
