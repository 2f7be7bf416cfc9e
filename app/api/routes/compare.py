"""Two or more finished jobs side by side on the same test rows (`app.comparison` does the work)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.api.views import succeeded_metrics
from app.artifacts import PREDICTIONS_ARTIFACT, artifact_key, find_artifact
from app.comparison import MAX_JOBS, Comparison, JobResult, compare
from app.db import session_scope
from app.errors import APIError, errors
from app.models import Job
from app.storage import get_storage

router = APIRouter(prefix="/api", tags=["results"], **AUTHENTICATED)

JobIds = Annotated[str, Query(
    max_length=MAX_JOBS * 40, description=f"2 to {MAX_JOBS} job ids, comma separated, each a finished (evaluated) "
                                          "job of yours (admins: anyone's).")]


@router.get("/compare", response_model=Comparison, responses=errors(404, 409, 422))
def compare_jobs(
    jobs: JobIds,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=0, le=500, description="Differing rows listed (the count covers all).")] = 100,
) -> Comparison:
    """The tuned students of 2 to 8 evaluated jobs side by side: scores with intervals, latency, size,
    training options and data revision; the test rows they share (aligned by input text), each
    pair's paired accuracy difference with its bootstrap 95% interval, and the rows where the
    students' answers or correctness differ. A job of another owner is 404; one not evaluated yet
    is 409 `not_evaluated`."""
    ids = parse_job_ids(jobs)
    with session_scope() as session:
        found = [load_job(session, str(job_id), caller) for job_id in ids]  # every 404 before any 409
        evaluated = [_evaluated(session, job) for job in found]
    # The files are read after the session has closed: no connection is held meanwhile.
    return compare([replace(result, predictions=_read_rows(key)) for result, key in evaluated], max_rows=limit)


def parse_job_ids(text: str) -> list[uuid.UUID]:
    """The ids of `?jobs=a,b,...`: 2 to MAX_JOBS distinct UUIDs, else a 422 saying which is wrong."""
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise _invalid("an empty job id (write the ids separated by single commas)")
    ids = []
    for part in parts:
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            raise _invalid(f"{part[:60]!r} is not a job id") from None
    if len(set(ids)) != len(ids):
        raise _invalid("a job is named twice")
    if not 2 <= len(ids) <= MAX_JOBS:
        raise _invalid(f"compare 2 to {MAX_JOBS} jobs, not {len(ids)}")
    return ids


def _invalid(message: str) -> APIError:
    return APIError(422, "validation_error", f"jobs: {message}")


def _evaluated(session: Session, job: Job) -> tuple[JobResult, str]:
    """The job's record (predictions still to read) and the storage key of its predictions, or 409 `not_evaluated`."""
    metrics = succeeded_metrics(job)
    if "evaluate" not in metrics:
        where = f", stage {job.stage}" if job.stage else ""
        raise APIError(409, "not_evaluated", f"job {job.id} has no evaluation yet (status {job.status}{where}); "
                                             "compare jobs whose evaluate stage has run")
    key = artifact_key(job.id, PREDICTIONS_ARTIFACT)
    if find_artifact(session, job.id, PREDICTIONS_ARTIFACT) is None or not get_storage().exists(key):
        raise APIError(409, "not_evaluated", f"job {job.id} has no predictions; resume it to evaluate it again")
    result = JobResult(id=str(job.id), task=job.task, status=job.status, spec=job.spec or {}, metrics=metrics,
                       predictions=())
    return result, key


def _read_rows(key: str) -> list[dict[str, Any]]:
    with get_storage().local_path(key).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
