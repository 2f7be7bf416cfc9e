"""Server-Sent Events from the real API process while the real status writer moves a job."""

from __future__ import annotations

import queue
import threading

import httpx

from app import job_stages, jobs
from app.cli.client import parse_sse
from app.db import session_scope
from app.models import JobStatus, StageStatus
from tests.support import http
from tests.support.factories import make_job

WAIT = 20


def events(url: str) -> tuple[queue.Queue, threading.Thread]:
    """Read an event stream in a thread; (event, data) pairs arrive on the queue, then None."""
    out: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            with http.stream("GET", url, timeout=httpx.Timeout(10, read=60)) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for event, data in parse_sse(response.iter_lines()):
                    out.put((event, data))
        except httpx.HTTPError:  # the server went away with the test module: nothing more to read
            pass
        finally:
            out.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return out, thread


def next_job_event(out: queue.Queue, until) -> dict:
    """Job events until one satisfies `until`."""
    while True:
        item = out.get(timeout=WAIT)
        assert item is not None, "the stream ended early"
        event, data = item
        if event == "job" and until(data):
            return data


def test_job_events_follow_each_change_then_end(api_service):
    job_id = make_job(task="sort support tickets into billing, shipping, technical")
    out, thread = events(f"{api_service.url}/api/jobs/{job_id}/events")
    first = next_job_event(out, lambda d: True)
    assert first["status"] == "queued" and first["id"] == str(job_id)
    assert [s["name"] for s in first["stages"]][:2] == ["plan", "generate"] and "spec" not in first

    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        job_stages.start_stage(session, job_id, "plan", 0.0)
    running = next_job_event(out, lambda d: d["status"] == "running")
    assert running["stage"] == "plan" and running["stages"][0]["status"] == "running"

    with session_scope() as session:
        job_stages.record_progress(session, job_id, "plan", 1, 4, 0.05)
    progressed = next_job_event(out, lambda d: d["stages"][0]["done"] == 1)
    plan = progressed["stages"][0]
    assert plan["total"] == 4 and plan["progress"] == 0.25 and plan["eta_seconds"] is not None

    with session_scope() as session:
        job_stages.finish_stage(session, job_id, "plan", StageStatus.FAILED, error="teacher unreachable")
        jobs.finish(session, job_id, token, JobStatus.FAILED, error_code="teacher_unavailable",
                    error_message="the teacher is unreachable")
    failed = next_job_event(out, lambda d: d["status"] == "failed")
    assert failed["error"] == {"code": "teacher_unavailable", "message": "the teacher is unreachable"}
    assert out.get(timeout=WAIT) == ("end", {"id": str(job_id), "status": "failed"})
    assert out.get(timeout=WAIT) is None, "the stream closes after `end`"
    thread.join(WAIT)


def test_events_of_unknown_job_are_a_404_before_streaming(api_service):
    response = http.get(f"{api_service.url}/api/jobs/00000000-0000-0000-0000-000000000000/events")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert http.get(f"{api_service.url}/api/jobs/nope/events").status_code == 404


def test_job_list_stream_shows_new_jobs_and_status_changes(api_service):
    out, _ = events(f"{api_service.url}/api/events/jobs?limit=5")
    first = out.get(timeout=WAIT)
    assert first[0] == "jobs" and "items" in first[1] and "total" in first[1]
    job_id = make_job(task="tell questions from complaints")
    while True:
        event, data = out.get(timeout=WAIT)
        if any(j["id"] == str(job_id) for j in data["items"]):
            break
    assert data["items"][0]["id"] == str(job_id) and data["items"][0]["status"] == "queued"
    with session_scope() as session:
        jobs.cancel(session, job_id)
    while True:
        event, data = out.get(timeout=WAIT)
        if data["items"][0]["status"] == "canceled":
            break
    assert data["items"][0]["id"] == str(job_id)
