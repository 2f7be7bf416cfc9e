"""The pipeline runner: executes a job's stages in order, recording each one. No Celery here."""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app import job_stages, jobs
from app.config import get_settings
from app.db import session_scope
from app.models import Job, JobStatus, StageStatus
from app.specs import JobSpec
from app.stage_plan import MODEL_STAGES
from app.storage import get_storage
from workers.monitor import JobCanceled, LeaseLost, RunMonitor
from workers.outages import describe, is_outage
from workers.progress import ItemRate
from workers.stages import REGISTRY, Stage, StageContext, StageError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long the runner keeps trying to record a stage's start or end while a service is down.
OUTAGE_PATIENCE = 60.0

Enqueue = Callable[[uuid.UUID, str], None]
#: Whether a queued job may start now, asked in the transaction that then claims it.
Admit = Callable[[Session, uuid.UUID], bool]


class Outcome(str, enum.Enum):
    """What a delivery of a job did."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    HANDED_OFF = "handed_off"  # the next stage belongs to another queue
    BUSY = "busy"  # another live worker holds the job
    DEFERRED = "deferred"  # left queued for now: another owner's job is due the slot
    NOTHING_TO_DO = "nothing_to_do"  # finished, canceled or deleted
    LEASE_LOST = "lease_lost"
    INTERRUPTED = "interrupted"  # a service of the installation was down; the job runs again later


@dataclass
class _Progress:
    """Turns a stage's `progress(done, total)` into stage and job progress rows, with the
    stage's items per minute in this run."""

    job_id: uuid.UUID
    stage: str
    index: int
    count: int
    monitor: RunMonitor
    rate: ItemRate = field(default_factory=ItemRate)
    items_per_min: float | None = None

    def job_fraction(self, stage_fraction: float) -> float:
        return min(1.0, (self.index + stage_fraction) / self.count)

    def progress(self, done: int, total: int, fraction: float | None = None) -> None:
        self.monitor.check()
        if fraction is None:
            fraction = min(1.0, done / total) if total > 0 else 0.0
        self.items_per_min = self.rate.update(done) or self.items_per_min
        with _unless_outage("progress"), session_scope() as session:
            job_stages.record_progress(session, self.job_id, self.stage, done, total, self.job_fraction(fraction),
                                       fraction=fraction, items_per_min=self.items_per_min)

    def check_canceled(self) -> None:
        self.monitor.check()

    def live_metrics(self, metrics: dict[str, Any]) -> None:
        self.monitor.check()
        if self.items_per_min is not None:  # live metrics replace the stage's metrics, the rate with them
            metrics = {**metrics, job_stages.ITEMS_PER_MIN: self.items_per_min}
        with _unless_outage("live metrics"), session_scope() as session:
            job_stages.record_live_metrics(session, self.job_id, self.stage, metrics)


@contextmanager
def _unless_outage(what: str) -> Iterator[None]:
    """Skip a write the next one supersedes (progress, live metrics) while the database is down:
    the stage goes on, and the lease (kept by the heartbeat) says it is alive."""
    try:
        yield
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("%s not recorded: %s", what, describe(exc))


def _patiently(write: Callable[[], T], patience: float = OUTAGE_PATIENCE) -> T:
    """Run a bookkeeping write (a stage started or finished, a job ended), trying again for
    `patience` seconds while a service is down, so a short outage costs no finished work."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return write()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() > deadline:
                raise
            log.warning("waiting for the database: %s", describe(exc))
            time.sleep(2)


def run_job(
    job_id: uuid.UUID,
    queue: str = "default",
    *,
    registry: Mapping[str, Stage] | None = None,
    enqueue: Enqueue | None = None,
    admit: Admit | None = None,
) -> Outcome:
    """Claim the job and run its pending stages that belong to `queue`. Safe to call twice.

    With `admit`, a queued job it refuses is left queued (`DEFERRED`); the answer and the claim
    are one transaction."""
    settings = get_settings()
    with session_scope() as session:
        if admit is not None and jobs.current_status(session, job_id) == JobStatus.QUEUED.value \
                and not admit(session, job_id):
            return Outcome.DEFERRED
        token = jobs.claim(session, job_id, settings.job_lease_seconds)
        status = jobs.current_status(session, job_id)
    if token is None:
        return Outcome.BUSY if status in (JobStatus.RUNNING.value, JobStatus.QUEUED.value) else Outcome.NOTHING_TO_DO
    monitor = RunMonitor(job_id, token, settings.job_lease_seconds, settings.job_heartbeat_seconds)
    with monitor:
        return _run_claimed(job_id, token, queue, registry if registry is not None else REGISTRY,
                            enqueue or _default_enqueue, monitor)


def _default_enqueue(job_id: uuid.UUID, queue: str) -> None:
    from app.queue import enqueue_run

    enqueue_run(job_id, queue)


def _run_claimed(
    job_id: uuid.UUID, token: str, queue: str, registry: Mapping[str, Stage], enqueue: Enqueue, monitor: RunMonitor
) -> Outcome:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None  # we hold its lease
        spec, count = JobSpec.model_validate(job.spec), len(job.stages)
        pending = [(s.position, s.name) for s in job_stages.pending_stages(session, job_id)]
        results = job_stages.stage_results(session, job_id)
    current: str | None = None
    held = False
    try:
        for index, name in pending:
            if held and name in MODEL_STAGES:
                continue
            stage = registry.get(name)
            if stage is None:
                return _fail(job_id, token, name, "stage_unavailable",
                             f"stage {name!r} is not available in this version of vibetune")
            if stage.queue != queue:
                return _hand_off(job_id, token, stage.queue, enqueue)
            monitor.check()
            current = name
            results[name] = _run_stage(job_id, stage, index, count, spec, results, monitor)
            current = None
            if results[name].get("hold") and not held:
                # The data is not fit to train on (the stage says why in its warnings): the job
                # stops after its data stages, and a resume trains it anyway.
                _patiently(lambda: _hold(job_id))
                held = True
        _patiently(lambda: _finish(job_id, token, JobStatus.SUCCEEDED, progress=1.0, stage=None))
        return Outcome.SUCCEEDED
    except JobCanceled:
        _close_stage(job_id, current, StageStatus.CANCELED, "canceled")
        return Outcome.CANCELED
    except LeaseLost:
        log.warning("job %s was taken over by another worker", job_id)
        return Outcome.LEASE_LOST
    except StageError as exc:
        return _fail(job_id, token, current, exc.code, exc.message)
    except Exception as exc:
        if is_outage(exc):
            # Nothing is written: the database may be the service that is down. The lease lapses
            # and the job is run again from where its stage keeps its work.
            log.warning("stage %s of job %s interrupted by an outage: %s", current, job_id, describe(exc))
            return Outcome.INTERRUPTED
        log.exception("stage %s of job %s crashed", current, job_id)
        return _fail(job_id, token, current, "stage_failed", f"{type(exc).__name__}: {exc}")


def _run_stage(
    job_id: uuid.UUID, stage: Stage, index: int, count: int, spec: JobSpec,
    results: dict[str, dict[str, Any]], monitor: RunMonitor,
) -> dict[str, Any]:
    sink = _Progress(job_id, stage.name, index, count, monitor)
    with session_scope() as session:
        job_stages.start_stage(session, job_id, stage.name, sink.job_fraction(0.0))
    work_dir = get_settings().work_dir / str(job_id) / stage.name
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(job_id=job_id, spec=spec, work_dir=work_dir, storage=get_storage(),
                       results=dict(results), sink=sink)
    metrics = stage.run(ctx) or {}
    monitor.check()
    _patiently(lambda: _close_stage(job_id, stage.name, StageStatus.SUCCEEDED, metrics=metrics))
    return metrics


def _hold(job_id: uuid.UUID) -> None:
    with session_scope() as session:
        job_stages.hold_after_data(session, job_id)


def _close_stage(job_id: uuid.UUID, name: str | None, status: StageStatus, error: str | None = None,
                 metrics: dict[str, Any] | None = None) -> None:
    if name is not None:
        with session_scope() as session:
            job_stages.finish_stage(session, job_id, name, status, metrics, error=error)


def _finish(job_id: uuid.UUID, token: str, to: JobStatus, **values: Any) -> None:
    with session_scope() as session:
        jobs.finish(session, job_id, token, to, **values)


def _fail(job_id: uuid.UUID, token: str, stage: str | None, code: str, message: str) -> Outcome:
    _close_stage(job_id, stage, StageStatus.FAILED, message)
    with session_scope() as session:
        jobs.finish(session, job_id, token, JobStatus.FAILED, error_code=code, error_message=message, stage=stage)
    return Outcome.FAILED


def _hand_off(job_id: uuid.UUID, token: str, queue: str, enqueue: Enqueue) -> Outcome:
    _patiently(lambda: _finish(job_id, token, JobStatus.QUEUED, run_token=None, lease_expires_at=None))
    # Should the broker stay away longer, the queued job is found by the workers' sweep.
    _patiently(lambda: enqueue(job_id, queue))
    return Outcome.HANDED_OFF
