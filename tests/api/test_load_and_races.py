"""Under load and under races: no request fails for want of a database connection, and every
cancel, resume and delete answers with what its own change did.

The load test runs a real uvicorn API process with a pool of three connections; the race tests
run the real app in-process (so the enqueue can be counted) with requests in threads of their
own, on the real database. Loopback only; every count and wait is bounded."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import jobs
from app.db import get_engine, session_scope
from app.main import create_app
from app.models import Job
from tests.conftest import ADMIN_HEADERS, SCRATCH
from tests.support import http
from tests.support.factories import make_job
from tests.support.live_service import LiveService

# --- load -----------------------------------------------------------------------------------------

POOL = {"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def small_pool_server() -> Iterator[str]:
    """The API under uvicorn with three database connections in all (and a 5 s pool timeout, so
    a request left waiting for a connection would fail fast instead of hiding in the numbers)."""
    for i in range(5):
        make_job(task=f"load test job {i}")
    logs = SCRATCH / "logs" / "api-small-pool"
    logs.mkdir(parents=True, exist_ok=True)
    service = LiveService(logs, workers=False, env=POOL)
    try:
        yield service.url
    finally:
        service.stop()


def test_150_concurrent_job_lists_all_answer_and_health_answers_meanwhile(small_pool_server):
    url = small_pool_server

    async def burst() -> tuple[list[int], float, httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with http.async_client(base_url=url, timeout=120, limits=limits) as client:
            lists = [asyncio.create_task(client.get("/api/jobs")) for _ in range(150)]
            await asyncio.sleep(0.05)  # the burst is in flight
            started = time.monotonic()
            health = await client.get("/health")
            health_seconds = time.monotonic() - started
            replies = await asyncio.gather(*lists)
        return [r.status_code for r in replies], health_seconds, health

    statuses, health_seconds, health = asyncio.run(asyncio.wait_for(burst(), timeout=150))
    assert statuses == [200] * 150, {s: statuses.count(s) for s in set(statuses)}
    # The test run's teacher URL has nothing behind it, so health is degraded, but it answers, and
    # its database check got a connection.
    assert health.status_code in (200, 503) and health.json()["database"] == "ok", health.text
    assert health_seconds < 5, f"/health took {health_seconds:.1f} s under load"


def test_no_free_connection_is_503_with_retry_after_not_500(settings_env):
    settings_env(**{**POOL, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "0.3"})
    held = get_engine().connect()  # the only connection of the pool
    try:
        with TestClient(create_app(), raise_server_exceptions=False, headers=ADMIN_HEADERS) as client:
            response = client.get("/api/jobs")
            models = client.get("/v1/models")
    finally:
        held.close()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_busy"
    assert response.headers["Retry-After"] == "1"
    assert models.status_code == 503 and models.json()["error"]["code"] == "database_busy"
    assert models.headers["Retry-After"] == "1"


# --- races ----------------------------------------------------------------------------------------

@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    """Every job the job routes enqueue (nothing goes to the broker)."""
    calls: list[uuid.UUID] = []
    monkeypatch.setattr("app.api.routes.jobs.enqueue_run", lambda job_id, *a, **k: calls.append(job_id))
    return calls


def canceled_job() -> str:
    job_id = make_job()
    with session_scope() as session:
        jobs.cancel(session, job_id)
    return str(job_id)


def together(n: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`call(0..n-1)` in n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        barrier.wait(timeout=10)
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n), timeout=60))


def wait_for_lock_waiter(timeout: float = 10) -> None:
    """Until another backend of this database waits for a row lock (the request under test)."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    with get_engine().connect() as conn:
        while conn.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the request never waited for the lock"
            time.sleep(0.02)
            conn.rollback()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    return thread, out


def test_concurrent_resumes_one_wins_and_enqueues_once(client, enqueued):
    job_id = canceled_job()
    for round_ in range(3):
        replies = together(8, lambda _: client.post(f"/api/jobs/{job_id}/resume"))
        codes = sorted(r.status_code for r in replies)
        assert codes == [200] + [409] * 7, (round_, [r.text for r in replies])
        winner = next(r for r in replies if r.status_code == 200).json()
        assert winner["status"] == "queued" and winner["finished_at"] is None
        for lost in (r for r in replies if r.status_code == 409):
            assert lost.json()["error"] == {"code": "not_resumable",
                                            "message": f"job {job_id} is still active (status queued)"}
        assert enqueued == [uuid.UUID(job_id)] * (round_ + 1), "exactly one enqueue per resume that moved the job"
        assert client.post(f"/api/jobs/{job_id}/cancel").json()["status"] == "canceled"


def test_concurrent_cancels_one_wins_the_rest_are_told_it_is_canceled(client, enqueued):
    job_id = str(make_job())
    replies = together(6, lambda _: client.post(f"/api/jobs/{job_id}/cancel"))
    assert sorted(r.status_code for r in replies) == [200] + [409] * 5
    assert next(r for r in replies if r.status_code == 200).json()["status"] == "canceled"
    for lost in (r for r in replies if r.status_code == 409):
        assert lost.json()["error"] == {"code": "job_finished", "message": f"job {job_id} is already canceled"}


def test_cancels_and_resumes_racing_each_answer_with_their_own_change(client, enqueued):
    job_id = canceled_job()
    actions = ["resume", "cancel"] * 6
    replies = together(len(actions), lambda i: client.post(f"/api/jobs/{job_id}/{actions[i]}"))
    produced = {"resume": "queued", "cancel": "canceled"}
    for action, reply in zip(actions, replies, strict=True):
        assert reply.status_code in (200, 409), reply.text
        if reply.status_code == 200:
            assert reply.json()["status"] == produced[action], (action, reply.json()["status"])
        else:
            assert reply.json()["error"]["code"] == {"resume": "not_resumable", "cancel": "job_finished"}[action]
    resumed = sum(1 for a, r in zip(actions, replies, strict=True) if a == "resume" and r.status_code == 200)
    assert len(enqueued) == resumed >= 1


def test_resume_answers_with_its_own_change_though_the_job_moved_on(client, monkeypatch):
    job_id = canceled_job()

    def cancel_right_after(job: uuid.UUID, *_: Any, **__: Any) -> None:  # the resume has committed
        with session_scope() as session:
            jobs.cancel(session, job)

    monkeypatch.setattr("app.api.routes.jobs.enqueue_run", cancel_right_after)
    reply = client.post(f"/api/jobs/{job_id}/resume")
    assert reply.status_code == 200 and reply.json()["status"] == "queued", reply.text
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "canceled"


def test_resume_whose_job_is_then_deleted_is_no_500(client, monkeypatch):
    job_id = canceled_job()

    def delete_right_after(job: uuid.UUID, *_: Any, **__: Any) -> None:  # the resume has committed
        with session_scope() as session:
            jobs.cancel(session, job)
            session.delete(session.get(Job, job))

    monkeypatch.setattr("app.api.routes.jobs.enqueue_run", delete_right_after)
    reply = client.post(f"/api/jobs/{job_id}/resume")
    assert reply.status_code == 200 and reply.json()["status"] == "queued", reply.text
    assert client.get(f"/api/jobs/{job_id}").status_code == 404

    job_id = canceled_job()

    def broker_down_and_deleted(job: uuid.UUID, *_: Any, **__: Any) -> None:
        delete_right_after(job)
        raise ConnectionError("broker down")

    monkeypatch.setattr("app.api.routes.jobs.enqueue_run", broker_down_and_deleted)
    reply = client.post(f"/api/jobs/{job_id}/resume")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found", reply.text


@pytest.mark.parametrize("action", ["cancel", "resume"])
def test_change_waiting_on_a_delete_is_404_not_409_or_500(client, enqueued, action):
    job_id = str(make_job()) if action == "cancel" else canceled_job()
    with session_scope() as session:  # a delete in progress: it holds the row until it commits
        job = session.get(Job, uuid.UUID(job_id), with_for_update=True)
        if action == "cancel":
            jobs.cancel(session, job.id)
        thread, out = in_thread(lambda: client.post(f"/api/jobs/{job_id}/{action}"))
        wait_for_lock_waiter()
        session.delete(job)
    thread.join(timeout=30)
    reply = out[0]
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == {"code": "not_found", "message": f"job {job_id!r} not found"}
    assert enqueued == []


def test_delete_waiting_on_a_resume_is_409_with_the_status_it_lost_to(client, enqueued):
    job_id = canceled_job()
    with session_scope() as session:  # a resume in progress
        job = session.get(Job, uuid.UUID(job_id), with_for_update=True)
        thread, out = in_thread(lambda: client.delete(f"/api/jobs/{job_id}"))
        wait_for_lock_waiter()
        jobs.resume(session, job)
    thread.join(timeout=30)
    reply = out[0]
    assert reply.status_code == 409
    assert reply.json()["error"] == {"code": "job_active",
                                     "message": f"job {job_id} is queued; cancel it before deleting"}


def test_concurrent_deletes_one_204_the_rest_404(client, enqueued):
    job_id = canceled_job()
    replies = together(5, lambda _: client.delete(f"/api/jobs/{job_id}"))
    assert sorted(r.status_code for r in replies) == [204] + [404] * 4
