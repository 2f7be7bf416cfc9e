"""The pipeline runner, in-process, against the real database (no Celery involved)."""

import threading
import time

from app import jobs
from app.config import get_settings
from app.db import session_scope
from app.stage_plan import ALL_STAGES, DATA_STAGES
from tests.support.factories import load, make_job
from tests.support.stages import recording_registry, runs
from workers.pipeline import Outcome, run_job


def work_dir():
    return get_settings().work_dir


def no_enqueue(job_id, queue):
    raise AssertionError(f"unexpected hand-off of {job_id} to {queue}")


def test_all_stages_run_in_order_and_are_recorded():
    job_id = make_job(until="data")
    assert run_job(job_id, registry=recording_registry(), enqueue=no_enqueue) is Outcome.SUCCEEDED
    job = load(job_id)
    assert job.status == "succeeded" and job.progress == 1.0 and job.finished_at
    assert runs(work_dir(), job_id) == list(DATA_STAGES)
    for stage in job.stages:
        assert stage.status == "succeeded" and stage.progress == 1.0
        assert stage.started_at <= stage.finished_at
        assert stage.metrics["ran"] == stage.name
    assert job.stages[-1].metrics["seen"] == sorted(DATA_STAGES[:-1]), "later stages see earlier results"


def test_missing_stage_fails_with_stage_unavailable_never_fake_success():
    job_id = make_job(until="data")
    registry = recording_registry()
    del registry["label"]
    assert run_job(job_id, registry=registry, enqueue=no_enqueue) is Outcome.FAILED
    job = load(job_id)
    assert job.status == "failed" and job.error_code == "stage_unavailable"
    assert "label" in job.error_message and job.stage == "label"
    assert [s.status for s in job.stages] == ["succeeded", "succeeded", "failed", "pending", "pending"]


def test_stage_error_and_crash_fail_the_job_with_their_codes():
    named = make_job(task="t [fail generate]", until="data")
    crashed = make_job(task="t [crash plan]", until="data")
    assert run_job(named, registry=recording_registry(), enqueue=no_enqueue) is Outcome.FAILED
    assert run_job(crashed, registry=recording_registry(), enqueue=no_enqueue) is Outcome.FAILED
    assert (load(named).error_code, load(named).stage) == ("test_failure", "generate")
    assert load(crashed).error_code == "stage_failed" and "RuntimeError" in load(crashed).error_message


def test_rerun_after_resume_skips_finished_stages():
    job_id = make_job(until="data")
    registry = recording_registry()
    missing = registry.pop("curate")
    run_job(job_id, registry=registry, enqueue=no_enqueue)
    with session_scope() as s:
        jobs.resume(s, load_for_update(s, job_id))
    registry["curate"] = missing
    assert run_job(job_id, registry=registry, enqueue=no_enqueue) is Outcome.SUCCEEDED
    assert runs(work_dir(), job_id) == ["plan", "generate", "label", "curate", "teacher_check"]


def test_a_stage_that_holds_the_data_stops_the_job_before_training_and_a_resume_trains_it():
    job_id = make_job(task="t [hold curate]")
    registry = recording_registry(gpu_stages=())
    assert run_job(job_id, registry=registry, enqueue=no_enqueue) is Outcome.SUCCEEDED
    job = load(job_id)
    assert job.status == "succeeded" and job.spec["until"] == "data"
    assert [s.name for s in job.stages] == list(DATA_STAGES), "the model stages are gone, not left pending"
    assert runs(work_dir(), job_id) == list(DATA_STAGES), "the data stages after the hold still run"
    with session_scope() as s:
        jobs.resume(s, load_for_update(s, job_id))
    assert run_job(job_id, registry=registry, enqueue=no_enqueue) is Outcome.SUCCEEDED
    assert runs(work_dir(), job_id) == list(ALL_STAGES), "a resume trains the held data as it is"
    assert load(job_id).spec["until"] == "model"


def load_for_update(session, job_id):
    from app.models import Job

    return session.get(Job, job_id)


def test_second_delivery_while_running_is_busy_and_after_is_noop():
    job_id = make_job(task="t [slow 2]", until="data")
    outcomes = []
    thread = threading.Thread(
        target=lambda: outcomes.append(run_job(job_id, registry=recording_registry(), enqueue=no_enqueue))
    )
    thread.start()
    time.sleep(0.5)
    assert run_job(job_id, registry=recording_registry(), enqueue=no_enqueue) is Outcome.BUSY
    thread.join()
    assert outcomes == [Outcome.SUCCEEDED]
    assert run_job(job_id, registry=recording_registry(), enqueue=no_enqueue) is Outcome.NOTHING_TO_DO
    assert runs(work_dir(), job_id) == list(DATA_STAGES)


def test_cancel_while_running_stops_within_seconds():
    job_id = make_job(task="t [slow 30]", until="data")
    result = {}

    def run():
        result["outcome"] = run_job(job_id, registry=recording_registry(), enqueue=no_enqueue)
        result["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    while load(job_id).status != "running":
        time.sleep(0.05)
    time.sleep(0.3)
    with session_scope() as s:
        jobs.cancel(s, job_id)
    canceled_at = time.monotonic()
    thread.join(timeout=20)
    assert result["outcome"] is Outcome.CANCELED
    assert result["ended"] - canceled_at < 10, "the 30 s stage must stop at the next heartbeat"
    job = load(job_id)
    assert job.status == "canceled" and job.stages[0].status == "canceled"
    assert 0 < job.stages[0].progress < 1
    assert runs(work_dir(), job_id) == ["plan"]


def test_hand_off_to_gpu_queue_and_back():
    job_id = make_job()
    handed = []
    registry = recording_registry(gpu_stages=("train",))
    assert run_job(job_id, "default", registry=registry, enqueue=lambda j, q: handed.append(q)) is Outcome.HANDED_OFF
    assert handed == ["gpu"] and load(job_id).status == "queued"
    assert run_job(job_id, "gpu", registry=registry, enqueue=lambda j, q: handed.append(q)) is Outcome.HANDED_OFF
    assert handed == ["gpu", "default"]
    assert run_job(job_id, "default", registry=registry, enqueue=no_enqueue) is Outcome.SUCCEEDED
    assert runs(work_dir(), job_id) == list(ALL_STAGES)
    job = load(job_id)
    assert job.attempts == 3 and [a.name for a in job.artifacts] == ["report.json"]
