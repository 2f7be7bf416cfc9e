"""Putting unfinished jobs back on the queue: when a worker starts, and while it runs.

Redis here keeps nothing on disk, and a worker can die holding a job, so on start every worker
re-enqueues the queued and running jobs (running ones delayed until their lease can lapse) whose
next stage belongs to one of its queues: a gpu worker restarted after a crash picks its training
job up again without waiting for a default worker to restart.

While it runs, every RECOVERY_SWEEP_SECONDS, each worker also sweeps (`Sweeper`): a running job
whose lease lapsed (its worker died and none restarted, or an outage made the run give up) is sent
again, and so is every queued job when the broker restarted meanwhile (Redis's `run_id` changed:
its messages are gone) or a queued job that ran before and sat untouched for `STALE_QUEUED` (a
hand-off whose message never reached the broker; a job that never ran has its message, or the API
failed it when the broker refused). Duplicates are harmless: a job is claimed with a conditional
UPDATE and runs once; the sweeper still sends each lapse once, to keep the queue short.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import job_stages
from app.db import session_scope
from app.models import Job, JobStatus
from app.queue import enqueue_run

log = logging.getLogger(__name__)

#: A queued job unchanged for this long is sent again (its message may never have reached the broker).
STALE_QUEUED = timedelta(minutes=15)


def recover_jobs(queues: Collection[str] = ("default",)) -> int:
    """Re-enqueue unfinished jobs whose next stage runs on one of `queues` (logical names);
    returns how many."""
    now = datetime.now(UTC)
    count = 0
    for job in _unfinished(queues):
        delay = (0.0 if job.status == JobStatus.QUEUED.value or job.lease_expires_at is None
                 else max(0.0, (job.lease_expires_at - now).total_seconds() + 1))
        enqueue_run(job.id, job.queue, countdown=delay or None)
        count += 1
    return count


@dataclass(frozen=True)
class UnfinishedJob:
    """A queued or running job and the queue of its next stage."""

    id: uuid.UUID
    status: str
    lease_expires_at: datetime | None
    updated_at: datetime
    attempts: int
    queue: str


def _unfinished(queues: Collection[str]) -> list[UnfinishedJob]:
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.lease_expires_at, Job.updated_at, Job.attempts).where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
        ).all()
        found = [UnfinishedJob(*row, queue=_next_queue(session, row[0])) for row in rows]
    return [job for job in found if job.queue in queues]


def _next_queue(session: Session, job_id: uuid.UUID) -> str:
    """The queue of the job's first unfinished stage (`default` for names this worker lacks)."""
    from workers.stages import REGISTRY

    pending = job_stages.pending_stages(session, job_id)
    stage = REGISTRY.get(pending[0].name) if pending else None
    return stage.queue if stage is not None else "default"


def lost_jobs(jobs: Collection[UnfinishedJob], now: datetime, *, broker_restarted: bool) -> list[UnfinishedJob]:
    """The jobs no message may run any more: running with a lapsed lease; queued, when the
    broker restarted, or when the job ran before and sat unchanged for `STALE_QUEUED`."""
    lost = []
    for job in jobs:
        if job.status == JobStatus.RUNNING.value:
            if job.lease_expires_at is not None and job.lease_expires_at < now:
                lost.append(job)
        elif broker_restarted or (job.attempts > 0 and job.updated_at < now - STALE_QUEUED):
            lost.append(job)
    return lost


@dataclass
class Sweeper:
    """Sends lost jobs of `queues` again, every `interval` seconds, on a daemon thread."""

    queues: Collection[str]
    interval: float
    broker_run_id: Callable[[], str]
    _sent: dict[uuid.UUID, tuple[str, datetime | None]] = field(default_factory=dict)
    _run_id: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def sweep(self) -> int:
        """One sweep; returns how many jobs it sent."""
        run_id = self.broker_run_id()
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        if restarted:
            log.warning("the broker restarted (its queued messages are gone); sending unfinished jobs again")
            self._sent.clear()
        sent = 0
        for job in lost_jobs(_unfinished(self.queues), datetime.now(UTC), broker_restarted=restarted):
            mark = (job.status, job.lease_expires_at if job.status == JobStatus.RUNNING.value else job.updated_at)
            if self._sent.get(job.id) == mark:
                continue  # sent for this very lapse already
            enqueue_run(job.id, job.queue)
            self._sent[job.id] = mark
            sent += 1
        if sent:
            log.info("sweep sent %d lost jobs again", sent)
        return sent

    def start(self) -> None:
        threading.Thread(target=self._loop, name="recovery-sweep", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception as exc:  # a service being down is what the next sweep is for
                log.warning("recovery sweep failed: %s", exc)


def redis_run_id(url: str) -> Callable[[], str]:
    """Reads the broker's `run_id`, which changes each time Redis starts."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)

    def run_id() -> str:
        return str(client.info("server")["run_id"])

    return run_id
