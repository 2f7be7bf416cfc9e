"""Every artifact of a job as one tar archive, streamed (never assembled in memory or on disk)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.artifacts import artifact_key, list_artifacts
from app.db import session_scope
from app.errors import APIError, errors
from app.storage import get_storage

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["artifacts"], **AUTHENTICATED)

CHECKSUMS = "SHA256SUMS"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One file of the archive: its name inside, size, modification time and where its bytes are."""

    name: str
    size: int
    mtime: float
    path: Path | None = None
    data: bytes = b""

    def header(self) -> bytes:
        info = tarfile.TarInfo(self.name)
        info.size, info.mtime, info.mode = self.size, self.mtime, 0o644
        return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")


def _padding(size: int, unit: int) -> int:
    return -size % unit


def archive_size(members: list[Member]) -> int:
    """The exact length of the archive `stream_tar` writes (for Content-Length)."""
    size = sum(len(m.header()) + m.size + _padding(m.size, _BLOCK) for m in members) + 2 * _BLOCK
    return size + _padding(size, _RECORD)


def stream_tar(members: list[Member]) -> Iterator[bytes]:
    """The archive: per member a header, the bytes, zero padding to a block; then the end marker
    padded to a whole record, as `tarfile` writes it. A file that shrank meanwhile aborts."""
    written = 0
    for member in members:
        header = member.header()
        yield header
        written += len(header)
        if member.path is None:
            yield member.data
        else:
            remaining = member.size
            with member.path.open("rb") as stream:
                while remaining:
                    chunk = stream.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise OSError(f"{member.name} is shorter than its recorded {member.size} bytes")
                    remaining -= len(chunk)
                    yield chunk
        pad = _padding(member.size, _BLOCK)
        yield b"\0" * pad
        written += member.size + pad
    end = 2 * _BLOCK
    yield b"\0" * (end + _padding(written + end, _RECORD))


@router.get(
    "/bundle",
    response_class=StreamingResponse,
    responses={200: {"description": f"An uncompressed tar of every artifact under `<job id>/`, with `{CHECKSUMS}`",
                     "content": {"application/x-tar": {}}}, **errors(404, 422)},
)
def get_bundle(job_id: str, caller: CallerDep) -> StreamingResponse:
    """Download all of the job's files at once: `<job id>/<artifact name>` for every artifact and
    `<job id>/SHA256SUMS` (`sha256sum -c SHA256SUMS` inside the folder checks them)."""
    with session_scope() as session:  # closed before the archive is streamed
        job = load_job(session, job_id, caller)
        artifacts = list_artifacts(session, job.id)
    if not artifacts:
        raise APIError(404, "not_found", f"job {job.id} has no artifacts yet")
    storage = get_storage()
    files = []
    for artifact in artifacts:
        path = storage.local_path(artifact_key(job.id, artifact.name))
        if not path.is_file():
            raise APIError(404, "not_found", f"artifact {artifact.name!r} of job {job.id} is missing from storage")
        files.append(Member(f"{job.id}/{artifact.name}", artifact.size, artifact.created_at.timestamp(), path))
    sums = "".join(f"{a.sha256}  {a.name}\n" for a in artifacts).encode()
    newest = max(m.mtime for m in files)
    members = [Member(f"{job.id}/{CHECKSUMS}", len(sums), newest, data=sums), *files]
    return StreamingResponse(
        stream_tar(members), media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{job.id}.tar"',
                 "Content-Length": str(archive_size(members))},
    )
