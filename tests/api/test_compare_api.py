"""GET /api/compare: two finished jobs side by side on their test rows, and its clear 4xx answers."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from app.artifacts import PREDICTIONS_ARTIFACT, save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.support.factories import make_finished_job, make_job, make_key

INPUTS = [f"message {i}" for i in range(12)]
EXPECTED = ["spam" if i % 3 == 0 else "ham" for i in range(12)]


def finished(answers: list[str], owner: str = "admin", student: str | None = None,
             training: dict[str, Any] | None = None) -> str:
    """A succeeded job whose evaluate stage scored `answers` against EXPECTED, with its predictions stored."""
    right = [a == e for a, e in zip(answers, EXPECTED, strict=True)]
    evaluation = {"student": {"accuracy": round(sum(right) / len(right), 4), "accuracy_ci95": [0.4, 0.9],
                              "n": len(right), "macro_f1": 0.7, "latency_ms": {"p50": 12.5, "p95": 20.0},
                              "size_bytes": 1000},
                  "teacher": {"accuracy": 1.0}, "base_student": {"accuracy": 0.5}, "verdict": "retune",
                  "reference": "test_set"}
    train = {"plan": {"method": "full", "epochs": 3, "batch_size": 8, "distillation": "soft_labels"},
             "examples": 40, "seconds": 12.0}
    body: dict[str, Any] = {"training": training or {}}
    if student:
        body["student"] = student
    job_id = make_finished_job(metrics={"evaluate": evaluation, "train": train}, owner=owner, **body)
    rows = [{"input": i, "expected": e, "teacher": e, "base_student": "ham", "student": a, "student_text": a,
             "correct": {"teacher": True, "base_student": e == "ham", "student": r}}
            for i, e, a, r in zip(INPUTS, EXPECTED, answers, right, strict=True)]
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, PREDICTIONS_ARTIFACT,
                      "".join(json.dumps(r) + "\n" for r in rows).encode())
    return str(job_id)


def test_two_finished_jobs_side_by_side(client: TestClient) -> None:
    a = finished(list(EXPECTED))
    worse = list(EXPECTED)
    worse[0], worse[3] = "ham", "ham"
    b = finished(worse, training={"batch_size": 4})

    response = client.get("/api/compare", params={"jobs": f"{a}, {b}", "limit": 1})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [j["id"] for j in body["jobs"]] == [a, b]
    assert body["same_rows"] is True and body["common_rows"] == 12
    assert body["jobs"][0]["scores"]["accuracy"] == 1.0 and body["jobs"][1]["common_accuracy"] == 0.8333
    assert body["jobs"][0]["options"]["epochs"] == 3 and body["jobs"][0]["scores"]["latency_ms"]["p50"] == 12.5
    pair = body["pairs"][0]
    assert (pair["a"], pair["b"], pair["difference"], pair["a_only_right"]) == (a, b, -0.1667, 2)
    assert pair["difference_ci95"][0] < 0
    assert body["differing_total"] == 2 and len(body["differing"]) == 1
    row = body["differing"][0]
    assert row["input"] == "message 0" and row["expected"] == "spam"
    assert row["answers"] == [{"answer": "spam", "correct": True}, {"answer": "ham", "correct": False}]


def test_unknown_and_other_owners_jobs_are_404(client: TestClient) -> None:
    alices = finished(list(EXPECTED), owner="alice")
    bobs = finished(list(EXPECTED), owner="bob")
    missing = str(uuid.uuid4())
    response = client.get("/api/compare", params={"jobs": f"{alices},{missing}"})
    assert response.status_code == 404 and missing in response.json()["error"]["message"]
    as_bob = client.get("/api/compare", params={"jobs": f"{bobs},{alices}"}, headers=make_key("bob"))
    assert as_bob.status_code == 404 and alices in as_bob.json()["error"]["message"]
    as_alice = client.get("/api/compare", params={"jobs": f"{alices},{alices.upper()}"}, headers=make_key("alice"))
    assert as_alice.status_code == 422, "the same job twice (ids are not case sensitive)"
    assert client.get("/api/compare", params={"jobs": f"{bobs},{alices}"}).status_code == 200, "admins see any"


def test_a_job_without_an_evaluation_is_409(client: TestClient) -> None:
    done = finished(list(EXPECTED))
    queued = str(make_job())
    response = client.get("/api/compare", params={"jobs": f"{done},{queued}"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_evaluated" and queued in response.json()["error"]["message"]
    no_predictions = str(make_finished_job(metrics={"evaluate": {"student": {"accuracy": 1.0}}}))
    response = client.get("/api/compare", params={"jobs": f"{done},{no_predictions}"})
    assert response.status_code == 409 and "predictions" in response.json()["error"]["message"]


def test_malformed_requests_are_422(client: TestClient) -> None:
    one = str(uuid.uuid4())
    for jobs in (one, f"{one},not-a-job", f"{one},,{uuid.uuid4()}", ",".join(str(uuid.uuid4()) for _ in range(9))):
        response = client.get("/api/compare", params={"jobs": jobs})
        assert response.status_code == 422, (jobs, response.text)
        assert response.json()["error"]["message"].startswith("jobs: ")
    assert client.get("/api/compare").status_code == 422
    assert client.get("/api/compare", params={"jobs": f"{one},{uuid.uuid4()}", "limit": 501}).status_code == 422
