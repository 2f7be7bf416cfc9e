"""Status changes return the row as their own UPDATE left it; a missing job is `JobNotFound`."""

import threading
import uuid

import pytest

from app import jobs
from app.db import session_scope
from app.models import Job, JobStatus
from tests.support.factories import make_job


def test_cancel_and_resume_return_the_job_as_their_update_left_it():
    job_id = make_job()
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "queued"
        canceled = jobs.cancel(s, job_id)
        assert canceled is job and job.status == "canceled" and job.finished_at is not None
    with session_scope() as s:
        job = s.get(Job, job_id, with_for_update=True)
        assert job is not None
        resumed = jobs.resume(s, job)
        assert resumed.status == "queued" and resumed.finished_at is None


def test_a_change_to_a_missing_job_is_job_not_found():
    with session_scope() as s, pytest.raises(jobs.JobNotFound) as info:
        jobs.cancel(s, uuid.uuid4())
    assert info.value.current is None and isinstance(info.value, jobs.IllegalTransition)


def test_concurrent_resumes_in_their_own_sessions_one_moves_the_job():
    job_id = make_job()
    with session_scope() as s:
        jobs.cancel(s, job_id)
    barrier, outcomes = threading.Barrier(6), []

    def resume() -> None:
        barrier.wait(timeout=10)
        try:
            with session_scope() as s:
                job = s.get(Job, job_id, with_for_update=True)
                assert job is not None
                outcomes.append(jobs.resume(s, job).status)
        except jobs.IllegalTransition as exc:
            outcomes.append(f"lost to {exc.current}")

    threads = [threading.Thread(target=resume) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["lost to queued"] * 5 + [JobStatus.QUEUED.value]
