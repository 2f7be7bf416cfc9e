"""A queued job shows its place in line for a default worker and when it is expected to start."""

from datetime import UTC, datetime

import pytest

from app import jobs, slots
from app.db import session_scope
from app.models import JobStatus
from tests.db.test_fair_slots import RECENT
from tests.support.fair import clear_queue, half_way, owned_job, recent_runs, start


@pytest.fixture
def empty_queue():
    clear_queue()
    yield
    clear_queue()


def seconds_from_now(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


def test_waiting_jobs_show_their_place_and_expected_start(client, empty_queue, monkeypatch):
    monkeypatch.setattr(slots, "HISTORY", 2)
    # alice holds both default slots: generating 20 examples, one 20 s and one 40 s in, half-way;
    # each then has its label (40 s), curate (1 s) and teacher check (5 s) to go.
    a1, a2 = owned_job("alice", num_examples=20), owned_job("alice", num_examples=20)
    for job_id, after in ((a1, 20), (a2, 40)):
        start(job_id)
        half_way(job_id, "generate", after)
    recent_runs(RECENT)
    a3, b1 = owned_job("alice"), owned_job("bob")  # bob's comes later but alice holds both slots

    bob, alice = client.get(f"/api/jobs/{b1}").json(), client.get(f"/api/jobs/{a3}").json()
    assert (bob["status"], bob["queue_position"], alice["queue_position"]) == ("queued", 1, 2)
    assert seconds_from_now(bob["expected_start_at"]) == pytest.approx(20 + 46, abs=3), "a1's slot frees first"
    assert seconds_from_now(alice["expected_start_at"]) == pytest.approx(40 + 46, abs=3), "then a2's"
    running = client.get(f"/api/jobs/{a1}").json()
    assert running["status"] == "running" and running["queue_position"] is running["expected_start_at"] is None


def test_a_submitted_job_gets_its_place_and_a_finished_one_none(client, empty_queue):
    reply = client.post("/api/jobs", json={"task": "sort tickets", "labels": ["a", "b"], "until": "data"})
    assert reply.status_code == 201, reply.text
    job = reply.json()
    assert job["queue_position"] == 1, "the slots are free: it starts next"
    assert seconds_from_now(job["expected_start_at"]) == pytest.approx(0, abs=3)

    done = owned_job("bob")
    token = start(done)
    with session_scope() as session:
        jobs.finish(session, done, token, JobStatus.SUCCEEDED)
    finished = client.get(f"/api/jobs/{done}").json()
    assert finished["queue_position"] is None and finished["expected_start_at"] is None


def test_the_fields_are_documented(client):
    props = client.get("/openapi.json").json()["components"]["schemas"]["JobPublic"]["properties"]
    assert {"queue_position", "expected_start_at"} <= set(props)
