"""Sharing the default slots between owners, read from the real Postgres: who holds a slot, who
waits for one, whose job may start, and a waiting job's place and expected start."""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from app import job_stages, jobs, slots
from app.db import session_scope
from app.models import JobStatus, StageStatus
from app.stage_plan import DATA_STAGES
from tests.support.fair import clear_queue, half_way, owned_job, recent_runs, start

pytestmark = pytest.mark.usefixtures("empty_queue")


@pytest.fixture
def empty_queue():
    clear_queue()
    yield
    clear_queue()


def state():
    with session_scope() as session:
        return slots.load_state(session)


def test_an_owner_holding_every_slot_leaves_the_next_to_another_owner():
    a1, a2, a3 = owned_job("alice"), owned_job("alice"), owned_job("alice")
    b1 = owned_job("bob")
    start(a1), start(a2)
    now = state()
    assert [j.id for j in now.running] == [a1, a2] and [j.id for j in now.waiting] == [a3, b1]
    assert not slots.may_start(now, a3, slots=2)
    assert slots.may_start(now, b1, slots=2)
    assert slots.may_start(now, a3, slots=4), "with room for both owners nobody waits"


def test_jobs_past_their_default_stages_hold_no_default_slot():
    handed_off = owned_job("alice", until="model")
    training = owned_job("alice", until="model")
    waiting = owned_job("bob")
    for job_id in (handed_off, training):
        token = start(job_id)
        with session_scope() as session:
            for name in DATA_STAGES:
                job_stages.finish_stage(session, job_id, name, StageStatus.SUCCEEDED, {})
            if job_id == handed_off:  # as the runner hands a job to the gpu queue
                jobs.finish(session, job_id, token, JobStatus.QUEUED, run_token=None, lease_expires_at=None)
            else:
                job_stages.start_stage(session, job_id, "train", 0.7)
    now = state()
    assert now.running == [] and [j.id for j in now.waiting] == [waiting]


def test_on_one_slot_the_owner_whose_job_started_last_waits():
    # Owners of their own: earlier tests in the run start jobs of "alice" and "bob" too.
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    done = owned_job(alice)
    token = start(done)
    with session_scope() as session:
        jobs.finish(session, done, token, JobStatus.SUCCEEDED)
    a2, b1 = owned_job(alice), owned_job(bob)  # alice's waits longer, but alice just had the slot
    now = state()
    assert alice in now.last_started and bob not in now.last_started
    assert not slots.may_start(now, a2, slots=1) and slots.may_start(now, b1, slots=1)


#: Stage times of the recent runs: plan 10 s, generate 1 s and label 2 s per example (10 examples),
#: curate 1 s, teacher check 5 s; a 10-example job takes 46 s.
RECENT = dict(zip(DATA_STAGES, (10, 10, 20, 1, 5), strict=True))


def test_a_waiting_jobs_place_and_start_come_from_the_stage_etas_and_recent_runs(monkeypatch):
    monkeypatch.setattr(slots, "HISTORY", 2)
    # alice's job is half-way through generating 20 examples after 20 s: 20 s more, label 40, curate 1, check 5.
    running = owned_job("alice", num_examples=20)
    start(running)
    half_way(running, "generate", after=20)
    recent_runs(RECENT)
    b1, b2 = owned_job("bob", num_examples=10), owned_job("bob", num_examples=10)
    now = datetime.now(UTC)
    with session_scope() as session:
        first = slots.queue_place(session, b1, slots=1, now=now)
        second = slots.queue_place(session, b2, slots=1, now=now)
        assert slots.queue_place(session, running, slots=1, now=now) is None, "running, not waiting"
    assert first is not None and second is not None
    assert (first.position, second.position) == (1, 2)
    assert (first.expected_start_at - now).total_seconds() == pytest.approx(66, abs=2)
    assert (second.expected_start_at - now).total_seconds() == pytest.approx(66 + 46, abs=2), "after b1's 46 s"


def test_two_workers_deciding_at_once_do_not_both_take_the_slot_due_to_another_owner():
    a1, a2, b1 = owned_job("alice"), owned_job("alice"), owned_job("bob")
    decided: dict[object, bool] = {}
    first_decided = threading.Event()

    def worker(job_id, hold):
        with session_scope() as session:
            decided[job_id] = slots.admit(session, job_id, slots=2)
            first_decided.set()
            time.sleep(hold)  # still deciding: the claim has not happened yet
            if decided[job_id]:
                assert jobs.claim(session, job_id, 600)

    one = threading.Thread(target=worker, args=(a1, 0.5))
    one.start()
    first_decided.wait(5)
    two = threading.Thread(target=worker, args=(a2, 0))
    two.start()
    one.join(10), two.join(10)
    assert decided == {a1: True, a2: False}, "the second decision waited for the first claim"
    assert slots.may_start(state(), b1, slots=2)
