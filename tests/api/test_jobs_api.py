"""The job routes through the real app, on the real database and broker."""

import uuid

import pytest
import redis

from app.config import get_settings
from app.stage_plan import ALL_STAGES, DATA_STAGES

SPAM = {
    "task": "Decide whether an SMS message is spam or a normal message",
    "labels": ["spam", "ham"],
    "test_set": [{"input": "WIN a free cruise, text YES now", "output": "spam"},
                 {"input": "see you at 6 for dinner?", "output": "ham"}],
}


def create(client, **overrides):
    response = client.post("/api/jobs", json={**SPAM, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


def queued_messages():
    client = redis.Redis.from_url(get_settings().redis_url)
    try:
        return client.llen(get_settings().queue_name("default"))
    finally:
        client.close()


def test_create_returns_the_stored_job_and_enqueues_it(client):
    before = queued_messages()
    job = create(client, num_examples=150)
    assert job["status"] == "queued" and job["progress"] == 0 and job["error"] is None
    assert job["spec"]["labels"] == ["spam", "ham"] and job["spec"]["num_examples"] == 150
    assert job["spec"]["teacher"] == get_settings().teacher_model
    assert [s["name"] for s in job["stages"]] == list(ALL_STAGES)
    assert queued_messages() == before + 1
    assert job["queue_position"] >= 1
    stored = client.get(f"/api/jobs/{job['id']}").json()
    # The expected start is an estimate from now on: it moves with the clock.
    assert {**stored, "expected_start_at": None} == {**job, "expected_start_at": None}


def test_until_data_job_has_data_stages_only(client):
    job = create(client, until="data")
    assert [s["name"] for s in job["stages"]] == list(DATA_STAGES)


def test_a_second_training_round_adds_refine_after_train_and_a_third_is_refused(client):
    job = create(client, training={"rounds": 2})
    assert [s["name"] for s in job["stages"]] == [*DATA_STAGES, "train", "refine", "evaluate", "package"]
    reply = client.post("/api/jobs", json={"task": "spam?", "labels": ["spam", "ham"], "training": {"rounds": 3}})
    assert reply.status_code == 422 and "rounds" in reply.text, reply.text


def test_list_is_newest_first_with_total_and_paging(client):
    ids = [create(client, task=f"task number {i}")["id"] for i in range(3)]
    page = client.get("/api/jobs?limit=2").json()
    assert page["total"] >= 3
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    second = client.get("/api/jobs?limit=2&offset=1").json()
    assert second["items"][0]["id"] == ids[1]
    assert "stages" not in page["items"][0]


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_id_is_404_with_envelope(client, job_id):
    for method, path in [("get", ""), ("post", "/cancel"), ("post", "/resume"), ("delete", ""), ("get", "/artifacts")]:
        response = client.request(method.upper(), f"/api/jobs/{job_id}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"


def test_cancel_queued_job_then_409(client):
    job = create(client)
    canceled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert canceled.json()["finished_at"] is not None
    again = client.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"


def test_resume_canceled_job_requeues_it(client):
    job = create(client)
    client.post(f"/api/jobs/{job['id']}/cancel")
    before = queued_messages()
    resumed = client.post(f"/api/jobs/{job['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "queued" and resumed.json()["finished_at"] is None
    assert queued_messages() == before + 1


def test_resume_of_active_job_is_409(client):
    job = create(client)
    response = client.post(f"/api/jobs/{job['id']}/resume")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "not_resumable", "message": f"job {job['id']} is still active (status queued)",
    }


def test_delete_active_job_is_409_then_delete_finished(client):
    job = create(client)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 409
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_models_lists_configuration(client):
    body = client.get("/api/models").json()
    assert body["teachers"][0] == get_settings().teacher_model
    assert body["students"][0] == get_settings().student_model


def test_broker_down_at_submit_is_503_and_the_job_is_kept_failed(client, settings_env):
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    import app.queue

    app.queue._celery = None
    try:
        response = client.post("/api/jobs", json=SPAM)
    finally:
        app.queue._celery = None
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"
    job_id = response.json()["error"]["message"].split()[1]
    stored = client.get(f"/api/jobs/{job_id}").json()
    assert stored["status"] == "failed" and stored["error"]["code"] == "broker_unavailable"
    assert stored["spec"]["labels"] == ["spam", "ham"], "nothing the person sent is lost"
