"""Small helpers that create real rows for tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from app import jobs
from app.db import session_scope
from app.models import Job
from app.schemas import JobCreate


def stored_jsonl(job_id: uuid.UUID, name: str) -> list[dict[str, Any]]:
    """The rows of a job's JSON Lines artifact `name`, read from the storage it was saved to."""
    from app.artifacts import artifact_key
    from app.storage import get_storage

    path = get_storage().local_path(artifact_key(job_id, name))
    return [json.loads(line) for line in path.read_text().splitlines()]


def make_job(owner: str = "admin", **body: Any) -> uuid.UUID:
    """Insert a queued job of `owner` from a submission body (validated like the API does); returns its id."""
    body.setdefault("task", "sort support tickets into billing, shipping, technical")
    with session_scope() as session:
        return jobs.create_job(session, JobCreate(**body).to_spec(), owner).id


def make_key(owner: str, admin: bool = False) -> dict[str, str]:
    """A new API key of `owner`, as request headers."""
    from app.auth import create_key

    with session_scope() as session:
        return {"Authorization": f"Bearer {create_key(session, owner, admin=admin).key}"}


def load(job_id: uuid.UUID) -> Job:
    """The job with its stages, freshly read."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        _ = job.stages, job.artifacts
        return job


def make_finished_job(
    model_dir: Path | None = None, metrics: dict[str, dict[str, Any]] | None = None, owner: str = "admin",
    **body: Any,
) -> uuid.UUID:
    """A job that has run every stage (through the real claim/finish path) with the given stage
    metrics, and, if `model_dir` is given, that folder stored as its `model/` artifacts
    (e.g. the bundled student standing in for a tuned one)."""
    from app import job_stages
    from app.artifacts import MODEL_FOLDER, save_folder
    from app.models import JobStatus, StageStatus
    from app.storage import get_storage

    job_id = make_job(owner, **body)
    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        assert token is not None
        job = session.get(Job, job_id)
        assert job is not None
        for stage in job.stages:
            stage_metrics = (metrics or {}).get(stage.name, {})
            job_stages.finish_stage(session, job_id, stage.name, StageStatus.SUCCEEDED, stage_metrics)
        if model_dir is not None:
            save_folder(session, get_storage(), job_id, MODEL_FOLDER, model_dir)
        jobs.finish(session, job_id, token, JobStatus.SUCCEEDED, progress=1.0, stage=None)
    return job_id


SMS_TASK_SPEC: dict[str, Any] = {
    "task": "Decide whether an SMS message is spam or a normal message (ham)",
    "task_type": "classification",
    "instruction": "Label the message spam if it is unsolicited advertising or a scam, else ham.",
    "labels": [{"name": "spam", "description": "unsolicited advertising, prizes, scams"},
               {"name": "ham", "description": "normal personal messages"}],
}


def make_trainable_job(rows: list[dict[str, Any]], training: dict[str, Any] | None = None,
                       task_spec: dict[str, Any] | None = None, **body: Any) -> uuid.UUID:
    """A queued job whose data stages have run: `task_spec` (default: the SMS spam task) as the
    plan's result and `rows` (input/output/split/label_probs) stored as its curated data set. The
    next delivery starts at `train`."""
    from app import job_stages
    from app.artifacts import DATASET_ARTIFACT, save_artifact
    from app.models import StageStatus
    from app.stage_plan import DATA_STAGES
    from app.storage import get_storage

    task_spec = task_spec or SMS_TASK_SPEC
    body.setdefault("task", task_spec["task"])
    if task_spec["task_type"] == "classification":
        body.setdefault("labels", [label["name"] for label in task_spec["labels"]])
    job_id = make_job(training=training or {}, **body)
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, DATASET_ARTIFACT, data)
        for name in DATA_STAGES:
            metrics = {"task_spec": task_spec} if name == "plan" else {}
            job_stages.finish_stage(session, job_id, name, StageStatus.SUCCEEDED, metrics)
    return job_id


def make_stopped_data_job(rows: list[dict[str, Any]], task_spec: dict[str, Any] | None = None,
                          owner: str = "admin", **body: Any) -> uuid.UUID:
    """A job that stopped after its data (`until: data`, succeeded) with `rows` as its curated data
    set: what a person edits before training it."""
    from app.models import JobStatus

    job_id = make_trainable_job(rows, task_spec=task_spec, until="data", owner=owner, **body)
    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        assert token is not None
        jobs.finish(session, job_id, token, JobStatus.SUCCEEDED, progress=1.0, stage=None)
    return job_id


def sms_training_rows(n_train: int, n_validation: int = 0) -> list[dict[str, Any]]:
    """Real SMS messages as curated data set rows, with soft labels leaning to the true label."""
    from tests.support.datasets import sms_spam

    rows = sms_spam((n_train + n_validation + 1) // 2 + 1)[: n_train + n_validation]
    other = {"spam": "ham", "ham": "spam"}
    return [{"input": r["input"], "output": r["output"], "split": "train" if i < n_train else "validation",
             "label_probs": {r["output"]: 0.9, other[r["output"]]: 0.1}} for i, r in enumerate(rows)]
