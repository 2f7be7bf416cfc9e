"""Every route needs a key, and owners cannot see or touch each other's jobs.

The operations come from the app's own OpenAPI document, so a route added later is covered
without editing this file: with no key, a Basic header or a made-up key it answers 401; a route
that names a job answers another owner with the same 404 as for a job that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.factories import make_finished_job, make_job, make_key
from workers.bundled_models import STUDENT, model_dir

#: Operations anyone may call: the health check, the sign-in itself, and the API's documents.
OPEN = {("GET", "/health"), ("POST", "/api/session"), ("DELETE", "/api/session")}
QUESTION = [{"role": "user", "content": "hello"}]


def operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every documented operation."""
    paths = client.get("/openapi.json").json()["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() for method in item
                  if method in ("get", "post", "put", "patch", "delete"))


def call(client: TestClient, method: str, template: str, job_id: str, headers: dict[str, str]) -> Any:
    """Call an operation with `job_id` in its path (and in the body of a /v1 completion)."""
    path = template.replace("{job_id}", job_id).replace("{model}", job_id).replace("{key_id}", "999999")
    path = path.replace("{name}", "model/config.json")
    body: dict[str, Any] | None = None
    if path == "/v1/chat/completions":
        body = {"model": job_id, "messages": QUESTION, "max_tokens": 1}
    elif path == "/api/jobs" and method == "POST":
        body = {"task": "is this spam?", "labels": ["spam", "ham"]}
    elif path.endswith("/data/edits"):
        body = {"edits": [{"op": "delete", "index": 0}]}
    elif path.endswith("/data/import"):
        body = {"rows": []}
    elif path == "/api/keys" and method == "POST":
        body = {"owner": "mallory", "admin": True}
    if "events" in path:  # (only finished jobs' streams are read whole here: they end)
        with client.stream(method, path, headers=headers) as response:
            response.read()
            return response
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def anonymous():
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def alices_job(test_database) -> str:
    return str(make_finished_job(model_dir=model_dir(STUDENT), owner="alice", labels=["spam", "ham"]))


def test_every_operation_needs_a_key(anonymous):
    job_id = str(make_job())
    closed = [op for op in operations(anonymous) if op not in OPEN]
    assert len(closed) >= 20, closed
    for method, path in closed:
        for headers in ({}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer vt_madeup"}):
            response = call(anonymous, method, path, job_id, headers)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            if path.startswith("/v1"):  # OpenAI's shape, so the openai package raises AuthenticationError
                assert response.json()["error"]["code"] == "invalid_api_key", (method, path)
            else:
                assert response.json()["error"]["code"] == "unauthorized", (method, path)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_owners_job_is_a_404_on_every_route_that_names_one(anonymous, alices_job):
    alice, bob = make_key("alice"), make_key("bob")
    named = [op for op in operations(anonymous) if "{job_id}" in op[1] or "{model}" in op[1]
             or op == ("POST", "/v1/chat/completions")]
    assert len(named) >= 12, named
    for method, path in named:
        if method == "DELETE":
            continue  # below, after the reads
        theirs = call(anonymous, method, path, alices_job, bob)
        assert theirs.status_code == 404, (method, path, theirs.status_code)
        missing = call(anonymous, method, path, str(uuid.uuid4()), bob)
        assert missing.status_code == 404, (method, path)
        if not path.startswith("/v1"):
            assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found", (method, path)
        mine = call(anonymous, method, path, alices_job, alice)
        assert f"{alices_job}' not found" not in mine.text and mine.status_code != 401, (method, path, mine.text)
    assert anonymous.delete(f"/api/jobs/{alices_job}", headers=bob).status_code == 404
    assert anonymous.get(f"/api/jobs/{alices_job}", headers=alice).status_code == 200, "bob's delete did nothing"


def test_lists_show_only_the_callers_jobs_and_admins_see_all(anonymous, alices_job):
    # An owner of this test's own: other tests of the session make jobs of "bob" too.
    bobs_job = str(make_job("bob-lists"))
    alice, bob, admin = make_key("alice"), make_key("bob-lists"), make_key("root", admin=True)

    def listed(headers: dict[str, str]) -> set[str]:
        return {j["id"] for j in anonymous.get("/api/jobs", params={"limit": 200}, headers=headers).json()["items"]}

    assert alices_job in listed(alice) and bobs_job not in listed(alice)
    assert bobs_job in listed(bob) and alices_job not in listed(bob)
    assert {alices_job, bobs_job} <= listed(admin)
    assert anonymous.get("/api/jobs", headers=bob).json()["total"] == 1
    served = {m["id"] for m in anonymous.get("/v1/models", headers=bob).json()["data"]}
    assert alices_job not in served
    assert alices_job in {m["id"] for m in anonymous.get("/v1/models", headers=alice).json()["data"]}
    with anonymous.stream("GET", "/api/events/jobs", headers=bob) as stream:
        lines = stream.iter_lines()
        data = next(line for line in lines if line.startswith("data:"))
    assert bobs_job in data and alices_job not in data


def test_a_job_belongs_to_the_key_that_submitted_it(anonymous):
    carol = make_key("carol")
    made = anonymous.post("/api/jobs", json={"task": "is this spam?", "labels": ["spam", "ham"], "until": "data"},
                          headers=carol)
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "carol"
    assert anonymous.post(f"/api/jobs/{made.json()['id']}/cancel", headers=carol).json()["status"] == "canceled"
