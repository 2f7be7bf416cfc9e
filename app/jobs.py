"""Job status and its transitions. `_write_status` is the only code that changes `jobs.status`.

Every change is one conditional UPDATE (`WHERE id = :id AND status IN (:allowed)`), so two
processes racing on the same job cannot both win: zero rows updated means the move was illegal
or somebody else got there first. The UPDATE returns the row as it left it (`RETURNING`), so the
winner answers with the state its own change produced, never with a later re-read that may
already show somebody else's; the loser is told the status it lost to, or `JobNotFound` when the
job was deleted meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, defer

from app.models import Job, JobStage, JobStatus, StageStatus
from app.specs import JobSpec
from app.stage_plan import MODEL_STAGES, model_stages, stages_for

Q, R, S, F, C = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)

#: Legal moves. running -> running is a takeover of a job whose worker's lease lapsed;
#: running -> queued hands a job to another queue (e.g. the gpu worker);
#: succeeded/failed/canceled -> queued is a resume.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    Q: frozenset({R, C, F}),
    R: frozenset({R, S, F, C, Q}),
    S: frozenset({Q}),
    F: frozenset({Q}),
    C: frozenset({Q}),
}


class IllegalTransition(Exception):
    """The job was not in a state from which the requested move is allowed (`current`: its status now)."""

    def __init__(self, job_id: uuid.UUID, to: JobStatus, current: str | None) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {to.value}")
        self.job_id, self.to, self.current = job_id, to, current


class JobNotFound(IllegalTransition):
    """The job does not exist (any more): it was never there, or it was deleted meanwhile."""

    def __init__(self, job_id: uuid.UUID, to: JobStatus) -> None:
        super().__init__(job_id, to, None)
        self.args = (f"job {job_id} not found",)


def sources_of(to: JobStatus) -> frozenset[JobStatus]:
    """The statuses from which `to` may be reached."""
    return frozenset(src for src, targets in ALLOWED_TRANSITIONS.items() if to in targets)


def _write_status(
    session: Session,
    job_id: uuid.UUID,
    to: JobStatus,
    *,
    expect: Iterable[JobStatus] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    **values: Any,
) -> Job | None:
    """Move the job to `to` if its status is a legal source (narrowed by `expect`). The job as
    this UPDATE left it (from `RETURNING`, also refreshing a copy the session holds), or None if
    it did not move."""
    sources = sources_of(to) if expect is None else sources_of(to) & set(expect)
    if to.finished:
        values.setdefault("finished_at", func.now())
        values.setdefault("lease_expires_at", None)
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in sources]), *where)
        .values(status=to.value, updated_at=func.now(), **values)
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.execute(stmt).scalars().first()


def current_status(session: Session, job_id: uuid.UUID) -> str | None:
    """The job's status as stored now, or None if the job does not exist."""
    return session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()


def transition(session: Session, job_id: uuid.UUID, to: JobStatus, **values: Any) -> Job:
    """Move a job along a legal edge and return it as the move left it; raise `IllegalTransition`
    with the status it has instead, or `JobNotFound` if there is no such job (any more)."""
    job = _write_status(session, job_id, to, **values)
    if job is not None:
        return job
    current = current_status(session, job_id)
    if current is None:
        raise JobNotFound(job_id, to)
    raise IllegalTransition(job_id, to, current)


class TooManyActiveJobs(Exception):
    """The owner already has as many queued or running jobs as they may."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(f"{owner} already has {limit} active (queued or running) jobs, the most allowed; "
                         "wait for one to finish or cancel one")
        self.owner, self.limit = owner, limit


def active_jobs(session: Session, owner: str) -> int:
    """How many queued or running jobs `owner` has."""
    return session.execute(
        select(func.count()).select_from(Job).where(Job.owner == owner, Job.status.in_([Q.value, R.value]))
    ).scalar_one()


def ensure_room(session: Session, owner: str, max_active: int | None) -> None:
    """Raise `TooManyActiveJobs` if `owner` may not have one more active job. Holds a per-owner
    advisory lock until the transaction ends, so racing submissions are counted one at a time."""
    if max_active is None:
        return
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"vibetune-owner:{owner}"))))
    if active_jobs(session, owner) >= max_active:
        raise TooManyActiveJobs(owner, max_active)


def create_job(session: Session, spec: JobSpec, owner: str = "local", *, max_active: int | None = None) -> Job:
    """Insert a queued job and a pending record for each of its stages (not committed); with
    `max_active`, only if the owner has fewer active jobs than that (`TooManyActiveJobs`)."""
    ensure_room(session, owner, max_active)
    job = Job(task=spec.task, spec=spec.model_dump(mode="json"), owner=owner, status=Q.value, progress=0.0)
    job.stages = [JobStage(name=name, position=i, metrics={})
                  for i, name in enumerate(stages_for(spec.until, spec.training.rounds))]
    session.add(job)
    session.flush()
    return job


def create_from_job(session: Session, source: Job, spec: JobSpec, owner: str, *,
                    max_active: int | None = None) -> Job:
    """Insert a queued job that starts where `source`'s data stages ended: those stages are
    recorded as succeeded with the source's metrics (and `copied_from`), so only the model stages
    run. The caller copies the data artifacts. Not committed; `TooManyActiveJobs` as `create_job`."""
    ensure_room(session, owner, max_active)
    done = {stage.name: stage.metrics or {} for stage in source.stages if stage.status == S.value}
    job = Job(task=spec.task, spec=spec.model_dump(mode="json"), owner=owner, status=Q.value, progress=0.0)
    job.stages = [
        JobStage(name=name, position=i, metrics={**done[name], "copied_from": str(source.id)},
                 status=StageStatus.SUCCEEDED.value, progress=1.0)
        if name in done and name not in MODEL_STAGES else JobStage(name=name, position=i, metrics={})
        for i, name in enumerate(stages_for(spec.until, spec.training.rounds))
    ]
    session.add(job)
    session.flush()
    return job


def claim(session: Session, job_id: uuid.UUID, lease_seconds: int) -> str | None:
    """Take a job for running: a queued one, or a running one whose worker stopped renewing its lease.

    Returns the run token that later calls must present, or None if the job is not ours to run.
    """
    token = str(uuid.uuid4())
    lease_lapsed = Job.status != R.value
    lease_lapsed = or_(lease_lapsed, Job.lease_expires_at.is_(None), Job.lease_expires_at < func.now())
    moved = _write_status(
        session,
        job_id,
        R,
        expect={Q, R},
        where=[lease_lapsed],
        run_token=token,
        attempts=Job.attempts + 1,
        lease_expires_at=func.now() + timedelta(seconds=lease_seconds),
        started_at=func.coalesce(Job.started_at, func.now()),
    )
    return token if moved is not None else None


def renew_lease(session: Session, job_id: uuid.UUID, token: str, lease_seconds: int) -> bool:
    """Extend the lease of the run holding `token`. False if the job is no longer ours to run."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.run_token == token, Job.status == R.value)
        .values(lease_expires_at=func.now() + timedelta(seconds=lease_seconds))
        .returning(Job.id)
    )
    return session.execute(stmt).first() is not None


def finish(session: Session, job_id: uuid.UUID, token: str, to: JobStatus, **values: Any) -> bool:
    """End the run holding `token` with `to` (succeeded, failed, or queued for a hand-off)."""
    return _write_status(session, job_id, to, expect={R}, where=[Job.run_token == token], **values) is not None


def fail_queued(session: Session, job_id: uuid.UUID, code: str, message: str) -> bool:
    """Fail a job that never started (e.g. the broker refused it)."""
    return _write_status(session, job_id, F, expect={Q}, error_code=code, error_message=message) is not None


def cancel(session: Session, job_id: uuid.UUID) -> Job:
    """Cancel a queued or running job (a running one notices at its next heartbeat); the job as
    this cancel left it."""
    return transition(session, job_id, C, expect={Q, R})


def resume(session: Session, job: Job, *, max_active: int | None = None) -> Job:
    """Queue a stopped job again: retry a failed or canceled one from the stage it stopped in,
    or carry a job that stopped after its data stages (`until: data`) on to the model stages.
    Returns the job as this resume left it; only a caller that got it back may enqueue the job.

    `job` should be loaded `FOR UPDATE` (as the API does): its status and spec are then the ones
    the decision is made on, and concurrent resumes take turns, the later ones finding it queued."""
    status = JobStatus(job.status)
    if status is S:
        if job.spec.get("until") != "data":
            raise IllegalTransition(job.id, Q, job.status)
        ensure_room(session, job.owner, max_active)
        job.spec = {**job.spec, "until": "model"}
        start = len(job.stages)
        job.stages.extend(
            JobStage(name=name, position=start + i, metrics={})
            for i, name in enumerate(model_stages(JobSpec.model_validate(job.spec).training.rounds))
        )
        session.flush()
    elif status not in (F, C):
        raise IllegalTransition(job.id, Q, job.status)
    else:
        ensure_room(session, job.owner, max_active)
    for stage in job.stages:
        if stage.status != StageStatus.SUCCEEDED.value:
            stage.status, stage.progress, stage.error_message = StageStatus.PENDING.value, 0.0, None
            stage.done = stage.total = None
            stage.started_at = stage.finished_at = None
    session.flush()
    return transition(
        session, job.id, Q, expect={S, F, C},
        error_code=None, error_message=None, finished_at=None, run_token=None,
    )


def newest_jobs(session: Session, limit: int, offset: int = 0, *, owner: str | None = None) -> tuple[list[Job], int]:
    """A page of jobs (only `owner`'s, if given), newest first, and how many there are in all (a
    read; writes no status).

    The `spec` column is not selected: it can be megabytes per job and no list shows it."""
    mine = [] if owner is None else [Job.owner == owner]
    total = session.execute(select(func.count()).select_from(Job).where(*mine)).scalar_one()
    rows = session.execute(
        select(Job).options(defer(Job.spec)).where(*mine)
        .order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return list(rows), total
