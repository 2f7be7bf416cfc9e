"""A worker killed mid-job: its job is taken over by the next worker and finishes."""

import signal
import time
import uuid

import app.queue
from app import jobs
from app.config import get_settings
from app.db import session_scope
from app.queue import enqueue_run
from app.stage_plan import DATA_STAGES
from tests.support.factories import load, make_job
from tests.support.processes import start_worker
from tests.support.stages import runs


def test_killed_worker_job_is_taken_over_after_its_lease(settings_env, tmp_path):
    # Private queues, so the session's shared workers do not take this job.
    settings_env(QUEUE_PREFIX=f"crash-{uuid.uuid4().hex[:6]}-")
    app.queue._celery = None
    try:
        job_id = make_job(task="label tickets [slow 8]", until="data")
        victim = start_worker("default", tmp_path / "victim.log", concurrency=1)
        enqueue_run(job_id)
        deadline = time.monotonic() + 30
        while not (load(job_id).stages[0].progress > 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert load(job_id).status == "running"
        victim.signal(signal.SIGKILL)  # the whole worker, pool included, dies without a word
        victim.stop()
        assert load(job_id).status == "running", "nobody has noticed yet"

        survivor = start_worker("default", tmp_path / "survivor.log", concurrency=1)
        try:
            job = finished(job_id, seconds=90)  # lease lapse (6 s) + the 8 s plan stage again + the rest
        finally:
            survivor.stop()
        assert job.status == "succeeded", survivor.output()[-3000:]
        assert job.attempts == 2
        assert runs(get_settings().work_dir, job_id) == ["plan", *DATA_STAGES]
    finally:
        app.queue._celery = None


def test_a_running_worker_sweeps_up_a_job_whose_worker_died_with_no_restart(settings_env, tmp_path):
    """No worker starts again (so no start-up recovery): the running one's sweep finds the lapsed
    lease and runs the job."""
    settings_env(QUEUE_PREFIX=f"sweep-{uuid.uuid4().hex[:6]}-", RECOVERY_SWEEP_SECONDS="1")
    app.queue._celery = None
    try:
        survivor = start_worker("default", tmp_path / "survivor.log", concurrency=1)
        try:
            job_id = make_job(task="label tickets", until="data")
            with session_scope() as session:  # a worker claims it, then dies without a word
                assert jobs.claim(session, job_id, lease_seconds=5) is not None
            job = finished(job_id, seconds=60)
        finally:
            survivor.stop()
        assert job.status == "succeeded", survivor.output()[-3000:]
        assert job.attempts == 2
        assert "sweep sent" in survivor.output()
    finally:
        app.queue._celery = None


def finished(job_id: uuid.UUID, seconds: float):
    """The job once it succeeded or failed, or as it is after `seconds`."""
    deadline = time.monotonic() + seconds
    while load(job_id).status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    return load(job_id)
