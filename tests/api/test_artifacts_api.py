"""Listing and downloading artifacts, with Range requests and names that cannot escape."""

import hashlib
import os

import pytest

from app.artifacts import save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.support.factories import make_job

PAYLOAD = os.urandom(200_000)


@pytest.fixture
def job_with_artifacts():
    job_id = make_job()
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, "report.json", b'{"accuracy": 0.9}')
        save_artifact(session, get_storage(), job_id, "model/model.safetensors", PAYLOAD)
    return job_id


def test_list_has_size_sha_and_url(client, job_with_artifacts):
    items = client.get(f"/api/jobs/{job_with_artifacts}/artifacts").json()["items"]
    assert [i["name"] for i in items] == ["model/model.safetensors", "report.json"]
    weights = items[0]
    assert weights["size"] == len(PAYLOAD)
    assert weights["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert weights["url"] == f"/api/jobs/{job_with_artifacts}/artifacts/model/model.safetensors"


def test_download_streams_the_exact_bytes(client, job_with_artifacts):
    response = client.get(f"/api/jobs/{job_with_artifacts}/artifacts/model/model.safetensors")
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response.headers["x-checksum-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert "model.safetensors" in response.headers["content-disposition"]


def test_range_request(client, job_with_artifacts):
    url = f"/api/jobs/{job_with_artifacts}/artifacts/model/model.safetensors"
    response = client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == PAYLOAD[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(PAYLOAD)}"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == PAYLOAD[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={len(PAYLOAD) + 5}-"})
    assert beyond.status_code == 416


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "model/%2E%2E/%2E%2E/%2E%2E/etc/passwd", ".env"]
)
def test_names_cannot_escape(client, job_with_artifacts, name):
    response = client.get(f"/api/jobs/{job_with_artifacts}/artifacts/{name}")
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] in ("invalid_artifact_name", "not_found")
    assert b"root:" not in response.content


def test_unknown_artifact_is_404(client, job_with_artifacts):
    response = client.get(f"/api/jobs/{job_with_artifacts}/artifacts/nope.bin")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_delete_removes_artifacts(client, job_with_artifacts):
    client.post(f"/api/jobs/{job_with_artifacts}/cancel")
    folder = get_storage().local_path(str(job_with_artifacts))
    assert folder.is_dir()
    assert client.delete(f"/api/jobs/{job_with_artifacts}").status_code == 204
    assert not folder.exists()
