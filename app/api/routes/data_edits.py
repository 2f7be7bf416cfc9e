"""Editing a job's curated data set before training: a batch of edits, an import of an edited
export, and the history of revisions. Each change is checked like curation checks the teacher's
answers and saved as a new revision (who, when, what), under the job's row lock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from app import dataset_revisions
from app.api.auth import AUTHENTICATED, CallerDep
from app.api.data_schemas import EditBatch, EditResult, ImportBody, RevisionPublic, RevisionsPublic
from app.api.deps import load_job
from app.api.views import succeeded_metrics
from app.auth import Caller
from app.dataset_edits import EditError, apply_edits, edits_from_import, live_rows
from app.db import session_scope
from app.errors import APIError, errors
from app.models import Job
from app.specs import TaskSpec
from app.storage import get_storage

router = APIRouter(prefix="/api/jobs/{job_id}/data", tags=["data"], **AUTHENTICATED)


def _actor(caller: Caller) -> str:
    return caller.owner if caller.key_id is None else f"{caller.owner} (key {caller.key_id})"


def _editable_job(session: Session, job_id: str, caller: Caller, base_revision: int | None) -> tuple[Job, int]:
    """The job, locked, with its current revision; 409 when its data may not change now or has
    moved on from `base_revision`."""
    job = load_job(session, job_id, caller, lock=True)
    reason = dataset_revisions.not_editable_reason(job)
    if reason is not None:
        raise APIError(409, "data_not_editable", f"the data of job {job.id} cannot be edited: {reason}")
    current = dataset_revisions.current_revision(session, job.id)
    if base_revision is not None and base_revision != current:
        raise APIError(409, "data_changed", f"the data set is at revision {current}, not {base_revision}: "
                                            "reload it and edit again")
    return job, current


def _apply(session: Session, job: Job, current: int, caller: Caller, rows: list[dict[str, Any]],
           edits: list[dict[str, Any]], dry_run: bool = False, where: str = "edits") -> EditResult:
    spec = TaskSpec.model_validate(succeeded_metrics(job)["plan"]["task_spec"])
    try:
        applied = apply_edits(rows, edits, spec)
    except EditError as exc:
        raise APIError(422, "invalid_edit", f"{where}[{exc.position}]: {exc.message}") from None
    revision = current
    if applied.edits and not dry_run:
        revision = dataset_revisions.save_revision(session, get_storage(), job.id, _actor(caller), applied)
    return EditResult(revision=revision, changes=applied.changes, edits=applied.edits,
                      rows=len(live_rows(applied.rows)), dry_run=dry_run)


@router.post("/edits", response_model=EditResult, responses=errors(400, 404, 409, 413, 422))
def edit_data(job_id: str, body: EditBatch, caller: CallerDep) -> EditResult:
    """Change outputs, delete, restore or add rows of a stopped job's data set, all or none, as one
    new revision. Only before its student is trained on the data (409 `data_not_editable`)."""
    with session_scope() as session:
        job, current = _editable_job(session, job_id, caller, body.base_revision)
        rows = dataset_revisions.read_rows(get_storage(), job.id)
        edits = [edit.model_dump(exclude_none=True) for edit in body.edits]
        return _apply(session, job, current, caller, rows, edits)


@router.post("/import", response_model=EditResult, responses=errors(400, 404, 409, 413, 422))
def import_data(job_id: str, body: ImportBody, caller: CallerDep) -> EditResult:
    """Make the data set equal an edited export (`vibetune data export`): rows with an `index` keep
    that row (output changed or restored), rows without one are added, rows left out are deleted.
    `dry_run` says what would change without changing it."""
    with session_scope() as session:
        job, current = _editable_job(session, job_id, caller, body.base_revision)
        rows = dataset_revisions.read_rows(get_storage(), job.id)
        try:
            edits = edits_from_import(rows, [row.model_dump(exclude_none=True) for row in body.rows])
        except EditError as exc:
            raise APIError(422, "invalid_import", f"rows[{exc.position}]: {exc.message}") from None
        return _apply(session, job, current, caller, rows, edits, dry_run=body.dry_run, where="changes")


@router.get("/revisions", response_model=RevisionsPublic, responses=errors(404, 422))
def list_revisions(job_id: str, caller: CallerDep) -> RevisionsPublic:
    """Every revision of the job's data set, newest first: who changed what, and when."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        items = [RevisionPublic(number=r.number, actor=r.actor, created_at=r.created_at, changes=r.changes,
                                edits=r.edits, rows_sha256=r.rows_sha256)
                 for r in dataset_revisions.revisions(session, job.id)]
    return RevisionsPublic(current=items[0].number if items else 0, items=items)
