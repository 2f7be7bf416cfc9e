"""Live job updates as Server-Sent Events: the dashboard and the CLI watch a job without polling it.

Each `job` event carries the whole current state (summary, stages with progress, ETA and live
metrics), so a client that reconnects needs nothing it missed. The server looks for changes every
EVENTS_POLL_SECONDS and sends only when something changed; a comment line keeps idle connections
open through proxies. After a finished job's last state an `end` event closes the stream.

A stream shows only what its caller may see, and checks every RECHECK_SECONDS that the key it
was opened with still works: once the key is revoked, an `end` event with status `unauthorized`
closes it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app import jobs
from app.api.auth import AUTHENTICATED, CallerDep, still_signed_in
from app.api.deps import load_job, parse_job_id
from app.api.views import job_summary, job_warnings, queue_place, stage_public, succeeded_metrics
from app.auth import Caller
from app.config import get_settings
from app.db import session_scope
from app.errors import APIError, errors
from app.models import JobStatus

router = APIRouter(tags=["jobs"], **AUTHENTICATED)

KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 30.0


class _KeyCheck:
    """Asks at most every RECHECK_SECONDS whether the stream's key still works."""

    def __init__(self, request: Request) -> None:
        self.request, self.checked = request, time.monotonic()

    async def revoked(self) -> bool:
        if time.monotonic() - self.checked < RECHECK_SECONDS:
            return False
        self.checked = time.monotonic()
        return not await still_signed_in(self.request)
RETRY_MILLISECONDS = 3000


def job_snapshot(job_id: str, caller: Caller) -> dict[str, Any]:
    """The job as an event sends it: its summary, warnings and stages (the spec, which can hold
    thousands of rows, is left to `GET /api/jobs/{id}`)."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        place = queue_place(job)
        started = place["expected_start_at"]
        return {
            **job_summary(job).model_dump(mode="json"),
            "warnings": job_warnings(succeeded_metrics(job)),
            "stages": [stage_public(s).model_dump(mode="json") for s in job.stages],
            "queue_position": place["queue_position"],
            "expected_start_at": started.isoformat() if started is not None else None,
        }


def _without_eta(snapshot: dict[str, Any]) -> dict[str, Any]:
    # Estimates move with the clock; sending each tick would be noise, so they ride along with real changes.
    return {**snapshot, "expected_start_at": None,
            "stages": [{k: v for k, v in s.items() if k != "eta_seconds"} for s in snapshot["stages"]]}


def jobs_snapshot(limit: int, caller: Caller) -> dict[str, Any]:
    """The caller's newest jobs (everyone's for an admin) as the job list shows them."""
    with session_scope() as session:
        rows, total = jobs.newest_jobs(session, limit, owner=None if caller.admin else caller.owner)
        return {"items": [job_summary(j).model_dump(mode="json") for j in rows], "total": total}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def job_event_stream(job_id: str, request: Request, caller: Caller,
                           first: dict[str, Any]) -> AsyncIterator[bytes]:
    """`job` events while the job changes, then `end` once it has finished."""
    interval, key_check = get_settings().events_poll_seconds, _KeyCheck(request)
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    snapshot, last_sent_key, last_write = first, None, time.monotonic()
    while True:
        # The ETA alone ticks every second; a change of anything else is news worth sending.
        key = json.dumps(_without_eta(snapshot), sort_keys=True)
        if key != last_sent_key:
            yield sse("job", snapshot)
            last_sent_key, last_write = key, time.monotonic()
        if JobStatus(snapshot["status"]).finished:
            yield sse("end", {"id": snapshot["id"], "status": snapshot["status"]})
            return
        if time.monotonic() - last_write >= KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            last_write = time.monotonic()
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return
        if await key_check.revoked():
            yield sse("end", {"id": first["id"], "status": "unauthorized"})
            return
        try:
            snapshot = await run_in_threadpool(job_snapshot, job_id, caller)
        except APIError:  # deleted while watched
            yield sse("end", {"id": first["id"], "status": "deleted"})
            return


async def jobs_event_stream(limit: int, request: Request, caller: Caller) -> AsyncIterator[bytes]:
    """A `jobs` event with the newest jobs whenever any of them changes (or one is added)."""
    interval, key_check = get_settings().events_poll_seconds, _KeyCheck(request)
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    last_sent, last_write = None, time.monotonic()
    while not await request.is_disconnected():
        if await key_check.revoked():
            yield sse("end", {"status": "unauthorized"})
            return
        snapshot = await run_in_threadpool(jobs_snapshot, limit, caller)
        if snapshot != last_sent:
            yield sse("jobs", snapshot)
            last_sent, last_write = snapshot, time.monotonic()
        elif time.monotonic() - last_write >= KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            last_write = time.monotonic()
        await asyncio.sleep(interval)


@router.get(
    "/api/events/jobs",
    response_class=StreamingResponse,
    responses={200: {"description": "Server-Sent Events: `jobs` (`{items, total}` as `GET /api/jobs`) "
                                    "whenever the newest jobs change", "content": {"text/event-stream": {}}},
               **errors(422)},
)
async def jobs_events(request: Request, caller: CallerDep,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> StreamingResponse:
    """Watch the job list live: one stream for the whole list, however many jobs are running."""
    return StreamingResponse(jobs_event_stream(limit, request, caller), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get(
    "/api/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"description": "Server-Sent Events: `job` (the job's state, JSON) whenever it changes, "
                                    "then `end` once it has finished",
                     "content": {"text/event-stream": {}}}, **errors(404, 422)},
)
async def job_events(job_id: str, request: Request, caller: CallerDep) -> StreamingResponse:
    """Watch a job live. An unknown job is a 404 before the stream starts."""
    parse_job_id(job_id)
    first = await run_in_threadpool(job_snapshot, job_id, caller)
    return StreamingResponse(
        job_event_stream(job_id, request, caller, first), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
