"""Three jobs of two owners submitted together, through the real API, real default workers (two
slots) and gpu worker, and the real vLLM teacher: all three succeed, and the second owner's job
takes the second slot instead of waiting behind the first owner's second job, which shows it
starts next while it waits."""

import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from app.queue import enqueue_run
from tests.support import http
from tests.support.fair import owned_job
from tests.support.live_service import LiveService

BODY = {"task": "Decide whether an SMS text message is spam or a normal personal message",
        "labels": ["spam", "ham"], "num_examples": 12, "until": "data"}
TOGETHER_SECONDS = 1800


@pytest.fixture(scope="module")
def two_slot_service(teacher_url, tmp_path_factory) -> Iterator[LiveService]:
    service = LiveService(tmp_path_factory.mktemp("together"), workers=True, env={"TEACHER_URL": teacher_url},
                          default_slots=2)
    yield service
    service.stop()


def stage_seconds(job: dict) -> dict[str, float]:
    return {s["name"]: round((datetime.fromisoformat(s["finished_at"])
                              - datetime.fromisoformat(s["started_at"])).total_seconds(), 1)
            for s in job["stages"] if s["started_at"] and s["finished_at"]}


def test_three_jobs_of_two_owners_submitted_together_all_succeed(two_slot_service, settings_env):
    service = two_slot_service
    settings_env(QUEUE_PREFIX=service.env["QUEUE_PREFIX"])  # enqueue where the service's workers listen
    # Submitted together: the other owner's job is stored first but its message reaches the
    # workers last, behind both of mine.
    other = owned_job(f"bob-{uuid.uuid4().hex[:6]}", **BODY)
    mine = [http.post(f"{service.url}/api/jobs", json=BODY) for _ in range(2)]
    assert [r.status_code for r in mine] == [201, 201], [r.text for r in mine]
    first, second = (r.json()["id"] for r in mine)
    enqueue_run(other)
    ids = {"first": first, "second": second, "other": str(other)}

    began, seen_places, jobs = time.monotonic(), set(), {}
    while time.monotonic() - began < TOGETHER_SECONDS:
        jobs = {name: http.get(f"{service.url}/api/jobs/{job_id}").json() for name, job_id in ids.items()}
        # Either of mine may be the one a worker claimed first; the other waits.
        seen_places |= {jobs[name]["queue_position"] for name in ("first", "second")
                        if jobs[name]["status"] == "queued"}
        if all(job["status"] in ("succeeded", "failed", "canceled") for job in jobs.values()):
            break
        time.sleep(2)
    took = time.monotonic() - began
    assert {name: job["status"] for name, job in jobs.items()} == dict.fromkeys(ids, "succeeded"), (
        jobs, service.output())
    started = {name: datetime.fromisoformat(job["started_at"]) for name, job in jobs.items()}
    # Whichever of my jobs a worker claimed first holds one slot; the other owner's job took the second.
    assert started["other"] < max(started["first"], started["second"]), "the other owner's job went ahead"
    assert 1 in seen_places, ("the waiting job showed it starts next", seen_places)
    print(f"\nthree jobs together: {took:.0f} s; "
          + "; ".join(f"{name} {stage_seconds(job)}" for name, job in jobs.items()))
