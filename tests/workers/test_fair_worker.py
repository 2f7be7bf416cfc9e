"""A real default worker with one slot shares it between owners: one owner's queued jobs do not
keep another owner's job waiting until all of them have run."""

import time
import uuid

import pytest

from app.config import get_settings
from app.queue import enqueue_run
from tests.support.factories import load
from tests.support.fair import clear_queue, owned_job
from tests.support.processes import start_worker


@pytest.fixture
def one_slot_worker(settings_env):
    """A default worker with one slot on queues of its own (the tier's shared workers never see them)."""
    clear_queue()  # its start-up recovery would run every job earlier tests left queued
    prefix = f"fair-{uuid.uuid4().hex[:6]}-"
    settings_env(QUEUE_PREFIX=prefix, DEFAULT_WORKER_SLOTS="1")
    log = get_settings().work_dir.parent / "logs" / f"worker-{prefix}default.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker = start_worker("default", log, concurrency=1, env={"QUEUE_PREFIX": prefix, "DEFAULT_WORKER_SLOTS": "1"})
    yield worker
    worker.stop()
    clear_queue()


def wait_until_finished(job_ids, worker, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [load(job_id) for job_id in job_ids]
        if all(job.status in ("succeeded", "failed", "canceled") for job in done):
            return done
        time.sleep(0.3)
    raise AssertionError(f"jobs still unfinished: {[j.status for j in done]}\n{worker.output()[-3000:]}")


def test_another_owners_job_runs_before_the_first_owners_later_ones(one_slot_worker):
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    a1 = owned_job(alice, task="label tickets [slow 4]")
    a2, a3 = owned_job(alice, task="label tickets [slow 1]"), owned_job(alice, task="label tickets [slow 1]")
    b1 = owned_job(bob, task="label tickets [slow 1]")  # submitted last, behind all of alice's
    for job_id in (a1, a2, a3, b1):
        enqueue_run(job_id)

    jobs = wait_until_finished([a1, a2, a3, b1], one_slot_worker)
    assert [job.status for job in jobs] == ["succeeded"] * 4
    started = {job.id: job.started_at for job in jobs}
    assert started[a1] < started[b1] < min(started[a2], started[a3]), (
        "once alice's first job had the slot, bob's job went next\n" + one_slot_worker.output()[-3000:])
    assert "waits for another owner's job" in one_slot_worker.output()
    assert all(job.attempts == 1 for job in jobs), "a job that waited was never claimed meanwhile"
