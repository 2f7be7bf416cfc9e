"""POST /api/jobs/estimate: a job's time per stage before it is submitted, from this
installation's past stage runs (or the defaults); and a running stage's items per minute."""

import uuid

import pytest

from app import job_stages, jobs
from app.db import session_scope
from app.models import StageStatus
from app.stage_plan import ALL_STAGES, DATA_STAGES, model_stages
from tests.support.factories import make_job, make_key, make_trainable_job, sms_training_rows
from tests.support.fair import backdate_stage


def recorded_train_runs(student: str, seconds: float, count: int = 2) -> None:
    """`count` past train runs of `student` on 10 examples in 2 epochs, each taking `seconds`."""
    for _ in range(count):
        job_id = make_job(owner="estimate-history", task="sort tickets", task_type="classification", student=student)
        with session_scope() as session:
            job_stages.start_stage(session, job_id, "train", 0.0)
            job_stages.finish_stage(session, job_id, "train", StageStatus.SUCCEEDED,
                                    {"examples": 10, "plan": {"epochs": 2.0}})
            jobs.cancel(session, job_id)
        backdate_stage(job_id, "train", seconds)


def test_an_estimate_names_each_stage_its_seconds_and_basis(client):
    student = f"acme/student-{uuid.uuid4().hex[:8]}"
    recorded_train_runs(student, seconds=40.0)  # 2 s an example-epoch
    body = {"task": "sort tickets", "labels": ["billing", "shipping"], "num_examples": 30, "student": student,
            "training": {"batch_size": 8}}
    reply = client.post("/api/jobs/estimate", json=body)
    assert reply.status_code == 200, reply.text
    estimate = reply.json()
    assert [s["name"] for s in estimate["stages"]] == list(ALL_STAGES)
    assert all(s["seconds"] >= 0 and s["basis"] for s in estimate["stages"])
    assert estimate["total_seconds"] == pytest.approx(sum(s["seconds"] for s in estimate["stages"]), abs=0.2)
    train = next(s for s in estimate["stages"] if s["name"] == "train")
    assert train == {"name": "train", "seconds": pytest.approx(27 * 10 * 2.0), "basis": "measured (2 stages)"}
    assert estimate["basis"].startswith("measured (")

    fresh = client.post("/api/jobs/estimate", json={**body, "student": "acme/never-trained", "until": "data"}).json()
    assert [s["name"] for s in fresh["stages"]] == list(DATA_STAGES), "until: data stops after the data stages"
    assert client.get("/api/jobs", params={"limit": 1}).json()["items"][0]["owner"] == "estimate-history", \
        "an estimate creates no job"


def test_an_estimate_from_a_jobs_data_has_only_the_model_stages(client):
    source = make_trainable_job(sms_training_rows(16, 4))
    reply = client.post("/api/jobs/estimate", json={"from_job": str(source), "training": {"epochs": 1}})
    assert reply.status_code == 200, reply.text
    assert [s["name"] for s in reply.json()["stages"]] == list(model_stages())
    theirs = client.post("/api/jobs/estimate", json={"from_job": str(source)}, headers=make_key("bob"))
    assert theirs.status_code == 404, "another owner's job is not there to estimate from"


def test_a_bad_body_gets_422_and_an_unknown_source_job_404(client):
    reply = client.post("/api/jobs/estimate", json={"task": "sort tickets", "num_examples": 0})
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "validation_error"
    assert "num_examples" in reply.text
    missing = client.post("/api/jobs/estimate", json={"from_job": str(uuid.uuid4())})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    unfinished = client.post("/api/jobs/estimate", json={"from_job": str(make_job())})
    assert unfinished.status_code == 409 and unfinished.json()["error"]["code"] == "no_data"


def test_a_running_stage_shows_its_items_per_minute(client):
    job_id = make_job(task="sort tickets")
    with session_scope() as session:
        job_stages.start_stage(session, job_id, "generate", 0.1)
        job_stages.record_progress(session, job_id, "generate", 8, 42, 0.15, fraction=0.3, items_per_min=12.5)
        job_stages.record_progress(session, job_id, "generate", 9, 42, 0.16, fraction=0.31)
    stage = next(s for s in client.get(f"/api/jobs/{job_id}").json()["stages"] if s["name"] == "generate")
    assert (stage["done"], stage["progress"], stage["items_per_min"]) == (9, 0.31, 12.5)
    assert "items_per_min" not in stage["metrics"]
    with session_scope() as session:
        job_stages.finish_stage(session, job_id, "generate", StageStatus.SUCCEEDED, {"calls": 42})
        jobs.cancel(session, job_id)
    stage = next(s for s in client.get(f"/api/jobs/{job_id}").json()["stages"] if s["name"] == "generate")
    assert stage["items_per_min"] is None and stage["metrics"] == {"calls": 42}
