"""Jobs through the real API, a real Redis broker and real Celery worker processes."""

import time

import pytest

from app.config import get_settings
from app.queue import enqueue_run
from app.stage_plan import ALL_STAGES, DATA_STAGES
from tests.support.factories import make_job
from tests.support.stages import runs

pytestmark = pytest.mark.usefixtures("workers")


def wait_for_job(client, job_id, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job never reached the expected state: {job}")


def finished(job):
    return job["status"] in ("succeeded", "failed", "canceled")


def submit(client, **body):
    response = client.post("/api/jobs", json={"task": "label tickets", **body})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_worker_runs_a_job_through_both_queues(client):
    job_id = submit(client)
    job = wait_for_job(client, job_id, finished)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["started_at"] and job["finished_at"]
    assert [s["status"] for s in job["stages"]] == ["succeeded"] * len(ALL_STAGES)
    assert runs(get_settings().work_dir, job_id) == list(ALL_STAGES)
    artifacts = client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]
    assert [a["name"] for a in artifacts] == ["report.json"]
    assert client.get(artifacts[0]["url"]).json() == {"ok": True}


def test_progress_is_visible_while_a_stage_runs(client):
    job_id = submit(client, task="label tickets [slow 4]", until="data")
    running = wait_for_job(client, job_id, lambda j: j["stages"][0]["progress"] > 0 and j["status"] == "running")
    assert running["stage"] == "plan" and 0 < running["progress"] < 1
    assert running["stages"][0]["done"] >= 1 and running["stages"][0]["total"] == 40
    assert wait_for_job(client, job_id, finished)["status"] == "succeeded"


def test_cancel_while_queued_never_runs(client):
    # Stored but not yet on the queue, so it is certainly still queued when canceled;
    # the message then reaches a real worker, which must leave the job alone.
    job_id = make_job(task="label tickets [slow 4]", until="data")
    assert client.post(f"/api/jobs/{job_id}/cancel").json()["status"] == "canceled"
    enqueue_run(job_id)
    enqueue_run(job_id)
    time.sleep(3)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "canceled" and job["started_at"] is None
    assert runs(get_settings().work_dir, job_id) == []


def test_cancel_while_running_stops_promptly(client):
    job_id = submit(client, task="label tickets [slow 60]", until="data")
    wait_for_job(client, job_id, lambda j: j["stages"][0]["progress"] > 0)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    canceled_at = time.monotonic()
    job = wait_for_job(client, job_id, lambda j: j["stages"][0]["status"] == "canceled", timeout=30)
    assert time.monotonic() - canceled_at < 15, "a 60 s stage must stop within a heartbeat or two"
    assert job["status"] == "canceled" and job["stages"][1]["status"] == "pending"
    assert runs(get_settings().work_dir, job_id) == ["plan"]


def test_job_delivered_twice_runs_once(client):
    job_id = submit(client, task="label tickets [slow 2]", until="data")
    enqueue_run(job_id)
    enqueue_run(job_id)
    job = wait_for_job(client, job_id, finished)
    time.sleep(get_settings().job_lease_seconds + 3)  # let the duplicates' retries come back
    assert job["status"] == "succeeded"
    assert runs(get_settings().work_dir, job_id) == list(DATA_STAGES), "each stage ran exactly once"
    assert client.get(f"/api/jobs/{job_id}").json()["finished_at"] == job["finished_at"]


def test_failed_job_resumes_from_its_failed_stage(client):
    job_id = submit(client, task="label tickets [fail label]", until="data")
    failed = wait_for_job(client, job_id, finished)
    assert failed["status"] == "failed" and failed["error"]["code"] == "test_failure" and failed["stage"] == "label"
    assert client.post(f"/api/jobs/{job_id}/resume").status_code == 200
    again = wait_for_job(client, job_id,
                         lambda j: j["status"] == "failed" and j["finished_at"] != failed["finished_at"])
    assert again["error"]["code"] == "test_failure"
    assert runs(get_settings().work_dir, job_id) == ["plan", "generate", "label", "label"], (
        "finished stages are not redone"
    )


def test_until_data_then_resume_carries_on_to_the_model_stages(client):
    job_id = submit(client, until="data")
    first = wait_for_job(client, job_id, finished)
    assert first["status"] == "succeeded" and [s["name"] for s in first["stages"]] == list(DATA_STAGES)
    resumed = client.post(f"/api/jobs/{job_id}/resume").json()
    assert resumed["spec"]["until"] == "model"
    job = wait_for_job(client, job_id,
                       lambda j: finished(j) and len(j["stages"]) == len(ALL_STAGES) and j["progress"] == 1.0)
    assert job["status"] == "succeeded"
    assert runs(get_settings().work_dir, job_id) == list(ALL_STAGES)
