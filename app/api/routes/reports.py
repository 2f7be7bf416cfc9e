"""What a job produced: its report and its data set."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.api.views import job_warnings, succeeded_metrics
from app.artifacts import DATASET_ARTIFACT, artifact_key, find_artifact
from app.db import session_scope
from app.errors import errors, not_found
from app.schemas import ReportPublic
from app.storage import get_storage

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["results"], **AUTHENTICATED)


@router.get("/report", response_model=ReportPublic, responses=errors(404, 422))
def get_report(job_id: str, caller: CallerDep) -> ReportPublic:
    """Scores so far: the teacher on the person's test set (after the teacher check), and, once
    trained, the untuned and tuned student with a verdict. Parts not measured yet are null."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        metrics = succeeded_metrics(job)
        task_type = (job.spec or {}).get("task_type")
    evaluation = metrics.get("evaluate", {})
    package = metrics.get("package", {})
    planned = metrics.get("plan", {}).get("task_spec", {}).get("task_type")
    return ReportPublic(
        task_type=planned or task_type,
        teacher=evaluation.get("teacher") or metrics.get("teacher_check", {}).get("teacher"),
        base_student=evaluation.get("base_student"),
        student=evaluation.get("student"),
        verdict=evaluation.get("verdict"),
        verdict_reason=evaluation.get("verdict_reason"),
        closed=evaluation.get("closed"),
        ratio=evaluation.get("ratio"),
        reference=evaluation.get("reference"),
        exports=package.get("exports"),
        recommended_export=package.get("recommended_export"),
        chat_format_check=package.get("chat_format_check"),
        costs=package.get("costs"),
        warnings=job_warnings(metrics),
    )


@router.get(
    "/dataset",
    response_class=FileResponse,
    responses={200: {"description": "JSON Lines: input, output, split, label_probs, bucket",
                     "content": {"application/x-ndjson": {}}}, **errors(404, 422)},
)
def get_dataset(job_id: str, caller: CallerDep) -> FileResponse:
    """The curated data set, one JSON object per line (also the artifact `dataset.jsonl`)."""
    with session_scope() as session:  # closed before the file is sent
        job = load_job(session, job_id, caller)
        artifact = find_artifact(session, job.id, DATASET_ARTIFACT)
    key = artifact_key(job.id, DATASET_ARTIFACT)
    if artifact is None or not get_storage().exists(key):
        raise not_found(f"data set of job {job.id} (it exists once the curate stage has run)")
    return FileResponse(get_storage().local_path(key), media_type="application/x-ndjson",
                        filename=f"{job.id}-dataset.jsonl", headers={"X-Checksum-Sha256": artifact.sha256})
