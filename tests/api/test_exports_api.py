"""The job body's `exports` through the real API on the real database: stored normalised on the
job's spec, an unknown one refused with the allowed names, and a retrain (`from_job`) choosing
its own or keeping the source job's."""

import pytest

from tests.support.factories import make_stopped_data_job, sms_training_rows

SPAM = {
    "task": "Decide whether an SMS message is spam or a normal message",
    "labels": ["spam", "ham"],
    "test_set": [{"input": "WIN a free cruise, text YES now", "output": "spam"},
                 {"input": "see you at 6 for dinner?", "output": "ham"}],
}


def created(client, body):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    return client.get(f"/api/jobs/{job['id']}").json()


def test_exports_are_stored_on_the_job_spec_normalised(client):
    job = created(client, {**SPAM, "exports": ["q4_k_m", "q8_0", "q4_k_m"]})
    assert job["spec"]["exports"] == ["f16", "q8_0", "q4_k_m"]
    assert created(client, SPAM)["spec"]["exports"] == ["f16", "q8_0"], "the default"
    assert created(client, {**SPAM, "exports": []})["spec"]["exports"] == ["f16"], "f16 is always made"


def test_an_unknown_export_is_a_422_naming_the_allowed_ones(client):
    response = client.post("/api/jobs", json={**SPAM, "exports": ["f16", "q3_k"]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"][0]["field"] == "exports.1"
    assert all(name in error["message"] for name in ("'f16'", "'q8_0'", "'q5_k_m'", "'q4_k_m'")), error["message"]
    estimate = client.post("/api/jobs/estimate", json={**SPAM, "exports": ["gguf"]})
    assert estimate.status_code == 422 and "exports.0" in estimate.text


@pytest.fixture
def stopped_job():
    return make_stopped_data_job(sms_training_rows(n_train=8, n_validation=2), exports=["q5_k_m"])


def test_a_retrain_keeps_the_sources_exports_unless_it_gives_its_own(client, stopped_job):
    kept = created(client, {"from_job": str(stopped_job)})
    assert kept["spec"]["exports"] == ["f16", "q5_k_m"]
    chosen = created(client, {"from_job": str(stopped_job), "exports": ["q4_k_m"]})
    assert chosen["spec"]["exports"] == ["f16", "q4_k_m"] and chosen["spec"]["from_job"] == str(stopped_job)
