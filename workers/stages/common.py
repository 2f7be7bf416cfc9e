"""Helpers shared by the teacher stages: the teacher client, JSON Lines artifacts, async runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from app.artifacts import artifact_key, save_artifact
from app.config import get_settings
from app.db import session_scope
from workers.stages.base import StageContext, StageError
from workers.teacher import Teacher, TeacherConfig

T = TypeVar("T")


def teacher_for(ctx: StageContext) -> Teacher:
    """A teacher client for the job's chosen teacher model."""
    settings = get_settings()
    return Teacher(TeacherConfig(
        base_url=settings.teacher_url, model=ctx.spec.teacher, api_key=settings.teacher_api_key,
        concurrency=settings.teacher_concurrency, timeout=settings.teacher_timeout,
        max_retries=settings.teacher_max_retries,
    ))


CANCEL_POLL_SECONDS = 0.5


def with_teacher(ctx: StageContext, work: Callable[[Teacher], Awaitable[T]]) -> tuple[T, dict[str, int]]:
    """Run `work` with a fresh teacher client on a private event loop; returns its result and usage.

    The job's cancel flag is polled while requests are in flight, so a cancel aborts them at once
    instead of waiting for slow answers.
    """

    async def run() -> tuple[T, dict[str, int]]:
        teacher = teacher_for(ctx)
        task = asyncio.ensure_future(work(teacher))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
                if not task.done():
                    ctx.check_canceled()
            return task.result(), dict(teacher.usage)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await teacher.close()

    return asyncio.run(run())


def write_jsonl(ctx: StageContext, name: str, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Store rows as a JSON Lines artifact of the job; returns its name, size and sha256."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    with session_scope() as session:
        artifact = save_artifact(session, ctx.storage, ctx.job_id, name, data)
        return {"name": artifact.name, "size": artifact.size, "sha256": artifact.sha256}


def read_jsonl(ctx: StageContext, name: str) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines artifact written by an earlier stage."""
    path = ctx.storage.local_path(artifact_key(ctx.job_id, name))
    if not path.is_file():
        raise StageError("missing_data", f"{name} is missing; run the earlier stages again")
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
