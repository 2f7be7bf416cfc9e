"""Status changes on the real database: conditional updates, claims, leases, resume."""

import pytest
from sqlalchemy import func, select, update

from app import jobs
from app.db import session_scope
from app.models import Job, JobStatus, StageStatus
from app.stage_plan import ALL_STAGES, DATA_STAGES, stages_for
from tests.support.factories import load, make_job


def test_new_job_is_queued_with_pending_stages():
    job = load(make_job())
    assert job.status == "queued" and job.progress == 0.0 and job.owner == "admin"  # the factory's owner
    assert [s.name for s in job.stages] == list(ALL_STAGES)
    assert {s.status for s in job.stages} == {"pending"}


def test_until_data_plans_only_the_data_stages():
    assert [s.name for s in load(make_job(until="data")).stages] == list(DATA_STAGES)


def test_illegal_transition_is_refused_and_changes_nothing():
    job_id = make_job()
    with session_scope() as s, pytest.raises(jobs.IllegalTransition) as info:
        jobs.transition(s, job_id, JobStatus.SUCCEEDED)
    assert info.value.current == "queued"
    assert load(job_id).status == "queued"


def test_claim_is_exclusive():
    job_id = make_job()
    with session_scope() as s:
        first = jobs.claim(s, job_id, lease_seconds=60)
    with session_scope() as s:
        second = jobs.claim(s, job_id, lease_seconds=60)
    assert first and second is None
    job = load(job_id)
    assert job.status == "running" and job.attempts == 1 and job.started_at is not None


def test_lapsed_lease_can_be_taken_over_and_the_old_token_is_dead():
    job_id = make_job()
    with session_scope() as s:
        old = jobs.claim(s, job_id, lease_seconds=60)
        lapsed = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1)
        s.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=lapsed))
    with session_scope() as s:
        new = jobs.claim(s, job_id, lease_seconds=60)
    assert new and new != old
    with session_scope() as s:
        assert not jobs.renew_lease(s, job_id, old, 60)
        assert not jobs.finish(s, job_id, old, JobStatus.SUCCEEDED)
        assert jobs.renew_lease(s, job_id, new, 60)
    assert load(job_id).attempts == 2


def test_finish_sets_finished_at_and_clears_lease():
    job_id = make_job()
    with session_scope() as s:
        token = jobs.claim(s, job_id, 60)
        assert jobs.finish(s, job_id, token, JobStatus.SUCCEEDED)
    job = load(job_id)
    assert job.status == "succeeded" and job.finished_at and job.lease_expires_at is None


def test_cancel_queued_and_running_but_not_finished():
    queued, running = make_job(), make_job()
    with session_scope() as s:
        jobs.claim(s, running, 60)
    with session_scope() as s:
        jobs.cancel(s, queued)
        jobs.cancel(s, running)
    assert load(queued).status == load(running).status == "canceled"
    with session_scope() as s, pytest.raises(jobs.IllegalTransition):
        jobs.cancel(s, queued)


def test_no_job_can_be_claimed_after_cancel():
    job_id = make_job()
    with session_scope() as s:
        jobs.cancel(s, job_id)
        assert jobs.claim(s, job_id, 60) is None


def _fail_at(job_id, stage_name):
    with session_scope() as s:
        token = jobs.claim(s, job_id, 60)
        job = s.get(Job, job_id)
        for stage in job.stages:
            if stage.name == stage_name:
                stage.status = StageStatus.FAILED.value
                break
            stage.status = StageStatus.SUCCEEDED.value
        s.flush()
        jobs.finish(s, job_id, token, JobStatus.FAILED, error_code="boom", error_message="x")


def test_resume_failed_job_keeps_finished_stages():
    job_id = make_job()
    _fail_at(job_id, "label")
    with session_scope() as s:
        jobs.resume(s, s.get(Job, job_id))
    job = load(job_id)
    assert job.status == "queued" and job.error_code is None and job.finished_at is None
    assert [s.status for s in job.stages[:3]] == ["succeeded", "succeeded", "pending"]


@pytest.mark.parametrize("rounds", [1, 2])
def test_resume_after_until_data_adds_model_stages(rounds):
    job_id = make_job(until="data", training={"rounds": rounds})
    with session_scope() as s:
        token = jobs.claim(s, job_id, 60)
        for stage in s.get(Job, job_id).stages:
            stage.status = "succeeded"
        s.flush()
        jobs.finish(s, job_id, token, JobStatus.SUCCEEDED)
    with session_scope() as s:
        jobs.resume(s, s.get(Job, job_id))
    job = load(job_id)
    assert job.spec["until"] == "model" and job.status == "queued"
    assert [s.name for s in job.stages] == list(stages_for("model", rounds))
    assert [s.status for s in job.stages][len(DATA_STAGES):] == ["pending"] * (2 + rounds)


@pytest.mark.parametrize("until", ["model"])
def test_resume_refuses_active_or_complete_jobs(until):
    queued = make_job(until=until)
    done = make_job(until=until)
    with session_scope() as s:
        token = jobs.claim(s, done, 60)
        jobs.finish(s, done, token, JobStatus.SUCCEEDED)
    for job_id in (queued, done):
        with session_scope() as s, pytest.raises(jobs.IllegalTransition):
            jobs.resume(s, s.get(Job, job_id))


def test_status_column_refuses_unknown_values():
    job_id = make_job()
    with pytest.raises(Exception, match="ck_jobs_status"):
        with session_scope() as s:
            s.execute(update(Job).where(Job.id == job_id).values(status="exploded"))


def test_only_app_jobs_writes_status():
    """Every `status=` write to jobs lives in app/jobs.py (the one status writer)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*root.glob("app/**/*.py"), *root.glob("workers/**/*.py")]:
        if path.name == "jobs.py" and path.parent.name == "app":
            continue
        text = path.read_text()
        # `Job.status ==` (a comparison in a query) is a read; `Job.status =` an assignment.
        if re.search(r"update\(Job\)[^\n]*\n?[^\n]*status\s*=", text) or re.search(r"Job\.status\s*=(?!=)", text):
            offenders.append(str(path))
    assert offenders == []
    with session_scope() as s:
        assert s.execute(select(func.count()).select_from(Job)).scalar_one() > 0
