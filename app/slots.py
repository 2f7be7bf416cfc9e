"""Sharing the default workers' slots fairly between owners, and where a queued job stands.

The default workers run DEFAULT_WORKER_SLOTS jobs at once. Before a worker starts a queued job it
asks `may_start`: the free slots go to the owners with waiting jobs that have the fewest jobs
running (ties: the owner whose last job started longest ago, then the oldest waiting job), so one
owner's many jobs cannot keep another owner's job waiting for a slot. A job that may not start
yet is left `queued` and offered again DEFER_SECONDS later, at most MAX_DEFERS times (then it runs
anyway, so a queued job whose message was lost cannot hold the others back for long).

`forecast` plays the same rule forward to give each waiting job its place and expected start:
slots free up when the running jobs' default stages end (their current stage's ETA plus the
typical time of the stages after it, from recent runs), and each job takes its own typical time.

Plain Python and SQL: the workers decide with it, the API shows its forecast.
"""

from __future__ import annotations

import heapq
import statistics
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.job_stages import stage_eta
from app.models import Job, JobStage, JobStatus, StageStatus
from app.stage_plan import DATA_STAGES

DEFER_SECONDS = 5.0
MAX_DEFERS = 12
#: Stages whose time grows with the job's `num_examples`; their typical time is kept per example.
PER_EXAMPLE_STAGES = frozenset({"generate", "label"})
#: Recent successful runs of a stage its typical time is the median of.
HISTORY = 20

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SlotJob:
    """A job on the default queue: holding a slot (running) or waiting for one (queued)."""

    id: uuid.UUID
    owner: str
    created_at: datetime
    #: Running: seconds of default-queue work left; waiting: all of its default work; None: unknown.
    seconds: float | None = None


@dataclass
class SlotState:
    """Who holds the default slots and who waits for one (oldest first)."""

    running: list[SlotJob] = field(default_factory=list)
    waiting: list[SlotJob] = field(default_factory=list)
    #: The most recent start of any of an owner's jobs.
    last_started: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Place:
    """A waiting job's place in line (1: starts next) and when it is expected to start."""

    position: int
    expected_start_at: datetime | None


def owner_order(waiting: Sequence[SlotJob], running: Counter[str], last_started: dict[str, datetime]) -> list[str]:
    """Owners with waiting jobs, the one the next free slot belongs to first."""
    oldest: dict[str, datetime] = {}
    for job in waiting:
        oldest.setdefault(job.owner, job.created_at)
    return sorted(oldest, key=lambda owner: (running[owner], last_started.get(owner, _EPOCH), oldest[owner], owner))


def may_start(state: SlotState, job_id: uuid.UUID, slots: int) -> bool:
    """Whether the waiting job may take a default slot now: its owner is among those the free
    slots belong to. A job not waiting (taken over, finished, unknown) is never held back."""
    job = next((j for j in state.waiting if j.id == job_id), None)
    if job is None or all(j.owner == job.owner for j in state.waiting):
        return True
    free = max(1, slots - len(state.running))
    order = owner_order(state.waiting, Counter(j.owner for j in state.running), state.last_started)
    return job.owner in order[:free]


def forecast(state: SlotState, slots: int, now: datetime) -> dict[uuid.UUID, Place]:
    """Every waiting job's place and expected start, playing `may_start`'s rule forward."""
    running = Counter(j.owner for j in state.running)
    last_started = dict(state.last_started)
    # (seconds from now until a slot frees, tie-breaker, owner of the job leaving it)
    frees: list[tuple[float, int, str | None]] = [(_or_inf(j.seconds), i, j.owner) for i, j in enumerate(state.running)]
    frees += [(0.0, len(frees) + i, None) for i in range(max(1, slots) - len(state.running))]
    heapq.heapify(frees)
    waiting = list(state.waiting)
    places: dict[uuid.UUID, Place] = {}
    tie = len(frees)
    while waiting:
        at, _, leaving = heapq.heappop(frees)
        if leaving is not None:
            running[leaving] -= 1
        owner = owner_order(waiting, running, last_started)[0]
        job = next(j for j in waiting if j.owner == owner)
        waiting.remove(job)
        start = None if at == float("inf") else now + timedelta(seconds=at)
        places[job.id] = Place(len(places) + 1, start)
        running[owner] += 1
        last_started[owner] = start or datetime.max.replace(tzinfo=UTC)
        tie += 1
        heapq.heappush(frees, (at + _or_inf(job.seconds), tie, owner))
    return places


def _or_inf(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


# --- reading the state from the database ---------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    name: str
    status: str
    progress: float
    started_at: datetime | None


def load_state(
    session: Session, default_stages: Collection[str] = DATA_STAGES, *, estimate: bool = False,
    now: datetime | None = None,
) -> SlotState:
    """The default slots as the database has them: running and queued jobs whose next stage runs
    on the default queue. With `estimate`, each job's `seconds` from stage ETAs and recent runs."""
    jobs = session.execute(
        select(Job.id, Job.owner, Job.status, Job.created_at, Job.spec["num_examples"].as_float())
        .where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        .order_by(Job.created_at, Job.id)
    ).all()
    pending = _pending_stages(session, [row[0] for row in jobs])
    typical = _typical_seconds(session, default_stages) if estimate else {}
    now = now or datetime.now(UTC)
    state = SlotState()
    for job_id, owner, status, created_at, examples in jobs:
        stages = pending.get(job_id, [])
        if not stages or stages[0].name not in default_stages:
            continue  # finished its default stages (waiting for the gpu queue, or done)
        seconds = (_work_left(stages, default_stages, typical, examples or 0.0, now) if estimate else None)
        slot_job = SlotJob(job_id, owner, created_at, seconds)
        (state.running if status == JobStatus.RUNNING.value else state.waiting).append(slot_job)
    owners = {row[1] for row in jobs}
    if owners:
        rows = session.execute(
            select(Job.owner, func.max(Job.started_at)).where(Job.owner.in_(owners), Job.started_at.is_not(None))
            .group_by(Job.owner)
        ).all()
        state.last_started = {owner: started for owner, started in rows if started is not None}
    return state


#: Key of the advisory lock that makes deciding and claiming one step across workers.
_DECIDE_LOCK = 0x76_74_73_6C  # "vtsl"


def admit(session: Session, job_id: uuid.UUID, slots: int, default_stages: Collection[str] = DATA_STAGES) -> bool:
    """`may_start` for the job, holding a lock until the session's transaction ends: a worker that
    claims the job in the same transaction is counted by the next worker's decision, so two
    workers deciding at once cannot both take the slot another owner's job is due."""
    session.execute(select(func.pg_advisory_xact_lock(_DECIDE_LOCK)))
    return may_start(load_state(session, default_stages), job_id, slots)


def queue_place(session: Session, job_id: uuid.UUID, slots: int, now: datetime | None = None,
                default_stages: Collection[str] = DATA_STAGES) -> Place | None:
    """The job's place among the jobs waiting for a default slot, or None if it is not waiting."""
    now = now or datetime.now(UTC)
    state = load_state(session, default_stages, estimate=True, now=now)
    if not any(j.id == job_id for j in state.waiting):
        return None
    return forecast(state, slots, now).get(job_id)


def _pending_stages(session: Session, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[_Stage]]:
    if not job_ids:
        return {}
    rows = session.execute(
        select(JobStage.job_id, JobStage.name, JobStage.status, JobStage.progress, JobStage.started_at)
        .where(JobStage.job_id.in_(job_ids), JobStage.status != StageStatus.SUCCEEDED.value)
        .order_by(JobStage.job_id, JobStage.position)
    ).all()
    stages: dict[uuid.UUID, list[_Stage]] = {}
    for job_id, name, status, progress, started_at in rows:
        stages.setdefault(job_id, []).append(_Stage(name, status, progress, started_at))
    return stages


def _typical_seconds(session: Session, default_stages: Collection[str]) -> dict[str, float]:
    """Median seconds of each default stage's recent successful runs (per example for
    PER_EXAMPLE_STAGES)."""
    recent = (
        select(
            JobStage.name,
            func.extract("epoch", JobStage.finished_at - JobStage.started_at).label("seconds"),
            Job.spec["num_examples"].as_float().label("examples"),
            func.row_number().over(partition_by=JobStage.name, order_by=JobStage.finished_at.desc()).label("n"),
        )
        .join(Job, Job.id == JobStage.job_id)
        .where(JobStage.status == StageStatus.SUCCEEDED.value, JobStage.name.in_(list(default_stages)),
               JobStage.started_at.is_not(None), JobStage.finished_at.is_not(None))
        .subquery()
    )
    samples: dict[str, list[float]] = {}
    for name, seconds, examples in session.execute(
        select(recent.c.name, recent.c.seconds, recent.c.examples).where(recent.c.n <= HISTORY)
    ):
        if name in PER_EXAMPLE_STAGES:
            if not examples:
                continue
            seconds = float(seconds) / float(examples)
        samples.setdefault(name, []).append(max(0.0, float(seconds)))
    return {name: statistics.median(values) for name, values in samples.items()}


def _work_left(stages: Sequence[_Stage], default_stages: Collection[str], typical: dict[str, float],
               examples: float, now: datetime) -> float | None:
    """Seconds until the job's default stages are done: the running stage's ETA (else its typical
    time less what it has run), then the typical time of each stage after it. None if unknown."""
    total = 0.0
    for stage in stages:
        if stage.name not in default_stages:
            break
        usual = typical.get(stage.name)
        if usual is not None and stage.name in PER_EXAMPLE_STAGES:
            usual *= examples
        if stage.status == StageStatus.RUNNING.value:
            eta = stage_eta(stage.status, stage.progress, stage.started_at, now)
            if eta is None and usual is not None and stage.started_at is not None:
                eta = max(0.0, usual - (now - stage.started_at).total_seconds())
            usual = eta if eta is not None else usual
        if usual is None:
            return None
        total += usual
    return total
