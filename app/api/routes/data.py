"""Browsing what a job made and how its models answered: the curated examples page by page, and
the per-example predictions of the evaluation. Both read the job's JSON Lines artifacts."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app import dataset_revisions
from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.api.limits import MAX_PAGE_OFFSET
from app.api.views import succeeded_metrics
from app.artifacts import DATASET_ARTIFACT, PREDICTIONS_ARTIFACT, artifact_key, find_artifact
from app.dataset_edits import live_rows
from app.db import session_scope
from app.errors import errors, not_found
from app.schemas import ExamplesPage, PredictionsPage
from app.storage import get_storage

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["results"], **AUTHENTICATED)

PageLimit = Annotated[int, Query(ge=1, le=500)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)]


def _artifact_file(session: Session, job_id: uuid.UUID, name: str, missing: str) -> Path:
    """Where a JSON Lines artifact of the job is, or a 404 naming what makes it."""
    key = artifact_key(job_id, name)
    storage = get_storage()
    if find_artifact(session, job_id, name) is None or not storage.exists(key):
        raise not_found(f"{missing} of job {job_id}")
    return storage.local_path(key)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines file (read with no database connection held)."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


@router.get("/examples", response_model=ExamplesPage, responses=errors(404, 422))
def list_examples(
    job_id: str,
    caller: CallerDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
    label: Annotated[str | None, Query(max_length=512, description="Only rows with this output.")] = None,
    split: Annotated[Literal["train", "validation"] | None, Query(description="Only rows of this split.")] = None,
    deleted: Annotated[bool | None, Query(description="Only deleted rows (true) or only rows in the data set "
                                                      "(false); both when omitted.")] = None,
) -> ExamplesPage:
    """The curated data set a page at a time, with each row's soft labels; the label and split
    counts of the data set (deleted rows not counted); what curation dropped, by reason; the data
    set's revision and whether a person may edit it now."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        path = _artifact_file(session, job.id, DATASET_ARTIFACT, "data set (it exists once the curate stage has run)")
        curate = succeeded_metrics(job).get("curate", {})
        revision = dataset_revisions.current_revision(session, job.id)
        not_editable = dataset_revisions.not_editable_reason(job)
    rows = [{**r, "deleted": bool(r.get("deleted"))} for r in _rows(path)]
    live = live_rows(rows)
    chosen = [(i, r) for i, r in enumerate(rows)
              if (label is None or r["output"] == label) and (split is None or r["split"] == split)
              and (deleted is None or r["deleted"] == deleted)]
    return ExamplesPage(
        items=[{"index": i, **r} for i, r in chosen[offset: offset + limit]],
        total=len(chosen),
        # Only classification rows carry label_probs; counting free-form outputs would list every row.
        label_counts=dict(Counter(r["output"] for r in live if "label_probs" in r).most_common()),
        split_counts=dict(Counter(r["split"] for r in live)),
        dropped=curate.get("dropped", {}),
        input_rows=curate.get("input_rows"),
        revision=revision,
        editable=not_editable is None,
        not_editable_reason=not_editable,
    )


@router.get("/predictions", response_model=PredictionsPage, responses=errors(404, 422))
def list_predictions(
    job_id: str,
    caller: CallerDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
    wrong: Annotated[Literal["student", "base_student", "teacher"] | None,
                     Query(description="Only rows this model got wrong.")] = None,
) -> PredictionsPage:
    """Each test row with the expected answer and what the teacher, the untuned and the tuned
    student answered (after evaluation)."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        path = _artifact_file(session, job.id, PREDICTIONS_ARTIFACT,
                              "predictions (they exist once the evaluate stage has run)")
    rows = _rows(path)
    chosen = [{"index": i, **r} for i, r in enumerate(rows) if wrong is None or not _is_right(r, wrong)]
    return PredictionsPage(items=chosen[offset: offset + limit], total=len(chosen))


def _is_right(row: dict[str, Any], model: str) -> bool:
    # Evaluate records each model's verdict by the scoring rule; predictions written before it did
    # (plain text answers) fall back to comparing the normalised text.
    recorded = row.get("correct")
    if isinstance(recorded, dict) and model in recorded:
        return bool(recorded[model])
    return bool(row.get(model) == row["expected"])
