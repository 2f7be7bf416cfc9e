"""Recording artifacts: store the bytes, then the row with size and sha256."""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import Artifact
from app.storage import Storage, validate_name

# Every artifact name a job's stages write, in one place (the API, the stages and the tests read them here).
#: The teacher's inputs, written by the generate stage.
GENERATED_ARTIFACT = "data/generated.jsonl"
#: The generated inputs with the teacher's answers (and soft labels), written by the label stage.
LABELED_ARTIFACT = "data/labeled.jsonl"
#: The curated data set a job produces (served by GET /api/jobs/{id}/dataset).
DATASET_ARTIFACT = "dataset.jsonl"
#: Per test row: expected answer and the teacher's (teacher_check stage).
TEACHER_PREDICTIONS_ARTIFACT = "reports/teacher_predictions.jsonl"
#: Per test row: expected answer and the teacher's, untuned and tuned student's (evaluate stage).
PREDICTIONS_ARTIFACT = "reports/predictions.jsonl"
#: The student's merged Hugging Face folder, written by the train stage (artifacts `model/...`).
MODEL_FOLDER = "model"
#: The new rows of the error-driven round (refine stage): inputs like the first model's misses, labelled.
REFINE_ROWS_ARTIFACT = "data/refine_rows.jsonl"
#: The LoRA adapter when the student was trained with LoRA (artifacts `adapter/...`).
ADAPTER_FOLDER = "adapter"
#: The package stage's files: the GGUF export, the Ollama Modelfile, the model card, the report.
GGUF_ARTIFACT = "student.gguf"
MODELFILE_ARTIFACT = "Modelfile"
MODEL_CARD_ARTIFACT = "README.md"
REPORT_ARTIFACT = "report.json"
#: A tool-calling student's call grammar (GBNF) for llama.cpp: `app.answer_shapes.call_grammar`.
CALL_GRAMMAR_ARTIFACT = "call.gbnf"


def artifact_key(job_id: uuid.UUID, name: str) -> str:
    """The storage key of a job's artifact."""
    return f"{job_id}/{validate_name(name)}"


def save_artifact(session: Session, storage: Storage, job_id: uuid.UUID, name: str, source: Path | bytes) -> Artifact:
    """Store `source` (a file or bytes) as the job's artifact `name`, replacing any earlier one."""
    key = artifact_key(job_id, name)
    if isinstance(source, bytes):
        stored = storage.put_stream(key, io.BytesIO(source))
    else:
        with open(source, "rb") as stream:
            stored = storage.put_stream(key, stream)
    session.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
    artifact = Artifact(job_id=job_id, name=name, size=stored.size, sha256=stored.sha256, location=stored.location)
    session.add(artifact)
    session.flush()
    return artifact


def list_artifacts(session: Session, job_id: uuid.UUID) -> list[Artifact]:
    """Every recorded artifact of the job, ordered by name."""
    return list(session.execute(
        select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.name)
    ).scalars().all())


def delete_job_files(storage: Storage, job_id: uuid.UUID, work_dir: Path | None = None) -> None:
    """Remove every file of a job: its stored artifacts and its scratch folder under `work_dir`
    (default: the WORK_DIR setting). The rows go with the job row (cascade); missing files are fine."""
    storage.delete_prefix(str(job_id))
    shutil.rmtree((work_dir or get_settings().work_dir) / str(job_id), ignore_errors=True)


def find_artifact(session: Session, job_id: uuid.UUID, name: str) -> Artifact | None:
    """The job's artifact called `name`, if recorded."""
    return session.execute(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    ).scalar_one_or_none()


def save_folder(session: Session, storage: Storage, job_id: uuid.UUID, prefix: str, folder: Path) -> list[Artifact]:
    """Store every file under `folder` as the job's artifacts `<prefix>/<relative path>`,
    replacing what was stored under that prefix before. Hidden files (markers, caches) are left out."""
    delete_folder(session, storage, job_id, prefix)
    return [
        save_artifact(session, storage, job_id, f"{prefix}/{path.relative_to(folder).as_posix()}", path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def delete_folder(session: Session, storage: Storage, job_id: uuid.UUID, prefix: str) -> None:
    """Remove the job's artifacts under `prefix/`, their records and their stored files."""
    session.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.name.startswith(f"{prefix}/")))
    storage.delete_prefix(artifact_key(job_id, prefix))


def folder_path(storage: Storage, job_id: uuid.UUID, prefix: str) -> Path:
    """A local folder holding the job's artifacts under `prefix` (e.g. the model for loading)."""
    return storage.local_folder(artifact_key(job_id, prefix))
