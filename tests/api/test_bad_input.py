"""Every bad input is a 4xx with the error envelope, naming the field; never a 500."""

import pytest

from app.config import get_settings

LIMITS = get_settings()

BAD_BODIES = [
    ({}, "task"),
    ({"task": ""}, "task"),
    ({"task": "   "}, "task"),
    ({"task": "x" * (LIMITS.max_task_chars + 1)}, "task"),
    ({"task": 42}, "task"),
    ({"task": "t", "task_type": "poetry"}, "task_type"),
    ({"task": "t", "labels": "spam,ham"}, "labels"),
    ({"task": "t", "labels": ["spam"]}, "labels"),
    ({"task": "t", "labels": ["spam", "spam"]}, "labels"),
    ({"task": "t", "examples": [{"input": "hi"}]}, "examples.0.output"),
    ({"task": "t", "examples": ["hi"]}, "examples.0"),
    ({"task": "t", "test_set": {"input": "a", "output": "b"}}, "test_set"),
    ({"task": "t", "labels": ["a", "b"], "test_set": [{"input": "x", "output": "c"}]}, "test_set"),
    ({"task": "t", "num_examples": 0}, "num_examples"),
    ({"task": "t", "num_examples": -5}, "num_examples"),
    ({"task": "t", "num_examples": 2.5}, "num_examples"),
    ({"task": "t", "num_examples": LIMITS.max_num_examples + 1}, "num_examples"),
    ({"task": "t", "until": "forever"}, "until"),
    ({"task": "t", "teacher": "no-such-model"}, "teacher"),
    ({"task": "t", "student": ""}, "student"),
    ({"task": "t", "training": {"epochs": 0}}, "training.epochs"),
    ({"task": "t", "training": {"optimizer": "adam"}}, "training.optimizer"),
    ({"task": "t", "training": "fast"}, "training"),
    ({"task": "t", "surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_bad_job_body_is_422_naming_the_field(client, body, field):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]
    assert field in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"task"', b""])
def test_malformed_json_is_422(client, raw):
    response = client.post("/api/jobs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_bad_input_creates_no_job(client):
    before = client.get("/api/jobs").json()["total"]
    client.post("/api/jobs", json={"task": "t", "num_examples": 0})
    assert client.get("/api/jobs").json()["total"] == before


@pytest.mark.parametrize(
    "query,field", [("limit=0", "limit"), ("limit=1000", "limit"), ("offset=-1", "offset"), ("limit=ten", "limit")]
)
def test_bad_paging_is_422(client, query, field):
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == field


def test_unknown_route_and_method_use_the_envelope(client):
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/api/jobs")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
