"""/health against real and broken dependencies; the OpenAPI document."""

import json
import logging

from app.config import get_settings


def test_health_ok(client, teacher_url):
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok" and body["teacher"] == "ok"


def test_health_503_when_teacher_is_down_says_only_error(client, settings_env, caplog):
    settings_env(TEACHER_URL="http://admin:s3cret@127.0.0.1:9/v1")
    with caplog.at_level(logging.WARNING, logger="app.health"):
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["teacher"] == "error" and body["database"] == "ok" and body["broker"] == "ok"
    assert "127.0.0.1" not in response.text and "s3cret" not in response.text, "no internal hosts or credentials"
    assert "http://***@127.0.0.1:9/v1" in caplog.text and "s3cret" not in caplog.text, "the log has the details"


def test_health_logs_a_teacher_model_the_server_lacks(client, teacher_url, settings_env, caplog):
    settings_env(TEACHER_URL=teacher_url, TEACHER_MODEL="no-such-teacher")
    with caplog.at_level(logging.WARNING, logger="app.health"):
        body = client.get("/health").json()
    assert body["status"] == "degraded" and body["teacher"] == "error"
    assert "no-such-teacher" in caplog.text and "no-such-teacher" not in json.dumps(body)


def test_health_503_when_broker_is_down(client, settings_env):
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok" and body["broker"] == "error"


def test_health_503_when_database_is_missing(client, settings_env):
    settings_env(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/vibetune_does_not_exist")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "error" and response.json()["broker"] == "ok"


def test_openapi_documents_every_route_and_error(client):
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/api/jobs": {"get", "post"},
        "/api/jobs/{job_id}": {"get", "delete"},
        "/api/jobs/{job_id}/cancel": {"post"},
        "/api/jobs/{job_id}/resume": {"post"},
        "/api/jobs/{job_id}/artifacts": {"get"},
        "/api/jobs/{job_id}/artifacts/{name}": {"get"},
        "/api/models": {"get"},
        "/api/jobs/{job_id}/report": {"get"},
        "/api/jobs/{job_id}/dataset": {"get"},
        "/health": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    post = paths["/api/jobs"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobCreate")
    error_ref = "#/components/schemas/ErrorResponse"
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] == error_ref
    not_found = paths["/api/jobs/{job_id}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"]["$ref"] == error_ref
    assert "409" in paths["/api/jobs/{job_id}/cancel"]["post"]["responses"]
    assert "206" in paths["/api/jobs/{job_id}/artifacts/{name}"]["get"]["responses"]
    assert "HTTPValidationError" not in doc["components"]["schemas"], "422s use the envelope"
    fields = doc["components"]["schemas"]["JobCreate"]["properties"]
    assert {
        "task", "task_type", "labels", "examples", "test_set", "teacher", "student", "num_examples", "until",
        "training",
    } <= set(fields)


def test_dashboard_is_served(client):
    response = client.get("/")
    assert response.status_code == 200 and "vibetune" in response.text
    assert get_settings().teacher_model
