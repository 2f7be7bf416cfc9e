"""GET /api/jobs/{id}/bundle: every artifact in one streamed tar, with SHA256SUMS."""

import hashlib
import io
import os
import subprocess
import tarfile
import uuid

import pytest

from app.api.routes.bundle import Member, archive_size, stream_tar
from app.artifacts import save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.support.factories import make_job

FILES = {
    "report.json": b'{"accuracy": 0.9}\n',
    "model/model.safetensors": os.urandom(1_300_000),  # more than one read chunk, not block aligned
    "model/empty.txt": b"",
    "data/" + "n" * 120 + ".jsonl": b'{"input": "a long name needs a PAX header"}\n',
}


@pytest.fixture
def job_with_files():
    job_id = make_job()
    with session_scope() as session:
        for name, data in FILES.items():
            save_artifact(session, get_storage(), job_id, name, data)
    return job_id


def test_bundle_holds_every_artifact_byte_for_byte(client, job_with_files):
    with client.stream("GET", f"/api/jobs/{job_with_files}/bundle") as response:
        assert response.status_code == 200
        chunks = list(response.iter_bytes())
    body = b"".join(chunks)
    assert response.headers["content-type"] == "application/x-tar"
    assert f'filename="{job_with_files}.tar"' in response.headers["content-disposition"]
    assert int(response.headers["content-length"]) == len(body)
    assert len(body) % tarfile.RECORDSIZE == 0

    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as archive:
        members = archive.getmembers()
        assert all(m.isfile() and m.name.startswith(f"{job_with_files}/") for m in members)
        got = {m.name.split("/", 1)[1]: archive.extractfile(m).read() for m in members}
    assert members[0].name.endswith("/SHA256SUMS")
    sums = got.pop("SHA256SUMS").decode()
    assert got == FILES
    expected_lines = sorted(f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in FILES.items())
    assert sorted(sums.splitlines()) == expected_lines


def test_bundle_checksums_verify_with_sha256sum(client, job_with_files, tmp_path):
    body = client.get(f"/api/jobs/{job_with_files}/bundle").content
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as archive:
        archive.extractall(tmp_path, filter="data")
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / str(job_with_files),
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(FILES)


def test_bundle_of_unknown_job_is_404(client):
    for job_id in (uuid.uuid4(), "not-a-uuid"):
        response = client.get(f"/api/jobs/{job_id}/bundle")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_bundle_of_job_without_artifacts_is_404(client):
    response = client.get(f"/api/jobs/{make_job()}/bundle")
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "not_found" and "artifacts" in body["error"]["message"]


def test_bundle_is_documented_with_the_error_envelope(client):
    doc = client.get("/openapi.json").json()
    route = doc["paths"]["/api/jobs/{job_id}/bundle"]["get"]
    assert "application/x-tar" in route["responses"]["200"]["content"]
    error_ref = "#/components/schemas/ErrorResponse"
    assert route["responses"]["404"]["content"]["application/json"]["schema"]["$ref"] == error_ref
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_bundle_with_a_file_gone_from_storage_is_404(client, job_with_files):
    get_storage().local_path(f"{job_with_files}/report.json").unlink()
    response = client.get(f"/api/jobs/{job_with_files}/bundle")
    assert response.status_code == 404
    assert "report.json" in response.json()["error"]["message"]


def test_stream_tar_yields_bounded_chunks(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    members = [Member("x/big.bin", big.stat().st_size, 0, big), Member("x/note.txt", 2, 0, data=b"hi")]
    chunks = list(stream_tar(members))
    assert max(len(c) for c in chunks) <= 1024 * 1024  # streamed in pieces, never the whole file at once
    body = b"".join(chunks)
    assert len(body) == archive_size(members)
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.extractfile("x/big.bin").read() == big.read_bytes()
        assert archive.extractfile("x/note.txt").read() == b"hi"
