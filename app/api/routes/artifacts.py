"""Artifact routes: list a job's files and download one (with Range support), or, with
ARTIFACT_PRESIGNED_URLS on an S3 store, send the client to a presigned URL of the object."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.api.views import artifact_public
from app.artifacts import artifact_key, find_artifact
from app.artifacts import list_artifacts as job_artifacts
from app.config import get_settings
from app.db import session_scope
from app.errors import APIError, errors, not_found
from app.s3_storage import S3Storage
from app.schemas import ArtifactsPublic
from app.storage import InvalidArtifactName, get_storage

router = APIRouter(prefix="/api/jobs/{job_id}/artifacts", tags=["artifacts"], **AUTHENTICATED)

#: How long a presigned download URL is valid. Only its start counts (a download that began in time
#: runs to its end), and each download asks the API for a fresh one, so a few minutes is plenty;
#: a URL that leaks is useless soon after.
PRESIGNED_URL_SECONDS = 300


@router.get("", response_model=ArtifactsPublic, responses=errors(404, 422))
def list_artifacts(job_id: str, caller: CallerDep) -> ArtifactsPublic:
    """The job's artifacts with size, sha256 and download URL."""
    with session_scope() as session:
        job = load_job(session, job_id, caller)
        return ArtifactsPublic(items=[artifact_public(a) for a in job_artifacts(session, job.id)])


@router.get(
    "/{name:path}",
    response_class=FileResponse,
    responses={
        200: {"description": "The file's bytes", "content": {"application/octet-stream": {}}},
        206: {"description": "The requested byte range", "content": {"application/octet-stream": {}}},
        307: {"description": "With ARTIFACT_PRESIGNED_URLS: `Location` is a presigned URL of the object in the "
              "store, valid for a few minutes (send no API key there; Range works on it too)"},
        **errors(400, 404, 416, 422),
    },
)
def download_artifact(job_id: str, caller: CallerDep, name: str) -> Response:
    """Stream one artifact. Honors `Range` headers; names cannot leave the job's folder. With
    ARTIFACT_PRESIGNED_URLS on an S3 store: 307 to a short-lived presigned URL of the object instead."""
    with session_scope() as session:  # closed before the file is sent
        job = load_job(session, job_id, caller)
        try:
            key = artifact_key(job.id, name)
        except InvalidArtifactName as exc:
            raise APIError(400, "invalid_artifact_name", str(exc)) from exc
        artifact = find_artifact(session, job.id, name)
    storage = get_storage()
    if artifact is None or not storage.exists(key):
        raise not_found(f"artifact {name!r} of job {job.id}")
    filename, headers = name.rsplit("/", 1)[-1], {"X-Checksum-Sha256": artifact.sha256}
    if get_settings().artifact_presigned_urls and isinstance(storage, S3Storage):
        url = storage.presigned_url(key, PRESIGNED_URL_SECONDS, download_name=filename)
        return RedirectResponse(url, status_code=307, headers=headers)
    return FileResponse(storage.local_path(key), filename=filename, headers=headers)
