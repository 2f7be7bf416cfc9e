"""A job's data set across a person's edits: which revision it is at, whether it may still change,
saving a revision, and copying a job's data into a new job that trains on it (`from_job`).

The data set artifact always holds the newest revision; each revision's row in
`dataset_revisions` records who changed what (with what each row held before), so the history
can be read and a trained model names the revision it learned from.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.artifacts import (
    DATASET_ARTIFACT,
    TEACHER_PREDICTIONS_ARTIFACT,
    artifact_key,
    find_artifact,
    list_artifacts,
    save_artifact,
)
from app.dataset_edits import Applied
from app.models import DatasetRevision, Job, JobStatus, StageStatus
from app.stage_plan import DATA_STAGES
from app.storage import Storage

#: The artifacts a job made from the teacher that a job trained `from_job` starts with.
DATA_ARTIFACT_PREFIXES = ("data/", DATASET_ARTIFACT, TEACHER_PREDICTIONS_ARTIFACT)


def read_rows(storage: Storage, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every row of the job's data set file, deleted ones included, in order."""
    path = storage.local_path(artifact_key(job_id, DATASET_ARTIFACT))
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def rows_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """The data set file's bytes for these rows."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def current_revision(session: Session, job_id: uuid.UUID) -> int:
    """The number of the job's newest data set revision (0: as curation wrote it)."""
    newest = session.execute(
        select(func.max(DatasetRevision.number)).where(DatasetRevision.job_id == job_id)
    ).scalar_one_or_none()
    return int(newest or 0)


def _stage_status(job: Job, name: str) -> str | None:
    return next((stage.status for stage in job.stages if stage.name == name), None)


def has_data(job: Job) -> bool:
    """Whether every data stage of the job has succeeded, so its data set is complete."""
    return all(_stage_status(job, name) == StageStatus.SUCCEEDED.value for name in DATA_STAGES)


def not_editable_reason(job: Job) -> str | None:
    """Why a person may not edit the job's data set now, or None when they may: the data must be
    complete, the job stopped, and its student not trained on it yet (a trained model keeps the
    revision it learned from)."""
    if not JobStatus(job.status).finished:
        return f"the job is {job.status}; edit its data once it has stopped"
    if not has_data(job):
        return "the job has no complete data set (its data stages have not all succeeded)"
    if _stage_status(job, "train") == StageStatus.SUCCEEDED.value:
        return ("its student is already trained on this data; to change the data, train another student "
                "from this job with `until: data`, edit that job's data, then train it")
    return None


def save_revision(session: Session, storage: Storage, job_id: uuid.UUID, actor: str, applied: Applied) -> int:
    """Store the edited rows as the job's data set and record the revision; returns its number.
    The caller holds the job's row lock, so revisions of one job are numbered one at a time."""
    data = rows_bytes(applied.rows)
    number = current_revision(session, job_id) + 1
    save_artifact(session, storage, job_id, DATASET_ARTIFACT, data)
    session.add(DatasetRevision(job_id=job_id, number=number, actor=actor, edits=applied.edits,
                                changes=applied.changes, rows_sha256=hashlib.sha256(data).hexdigest()))
    session.flush()
    return number


def revisions(session: Session, job_id: uuid.UUID) -> list[DatasetRevision]:
    """The job's revisions, newest first."""
    return list(session.execute(
        select(DatasetRevision).where(DatasetRevision.job_id == job_id).order_by(DatasetRevision.number.desc())
    ).scalars())


def copy_data(session: Session, storage: Storage, source: Job, target_id: uuid.UUID) -> list[str]:
    """Copy the source job's teacher-made artifacts (the data set as it is now, the generated and
    labelled rows, the teacher's test answers) to the target job; returns their names."""
    copied = []
    for artifact in list_artifacts(session, source.id):
        if not artifact.name.startswith(DATA_ARTIFACT_PREFIXES):
            continue
        path = storage.local_path(artifact_key(source.id, artifact.name))
        save_artifact(session, storage, target_id, artifact.name, path)
        copied.append(artifact.name)
    if find_artifact(session, target_id, DATASET_ARTIFACT) is None:
        raise FileNotFoundError(f"job {source.id} has no data set to copy")
    return copied
