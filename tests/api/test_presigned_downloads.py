"""ARTIFACT_PRESIGNED_URLS on an S3 store (moto's server, its own process): a download of one
artifact is a 307 to a short-lived presigned URL of the object, after the same checks as a
streamed one (the CLI following it: tests/integration/test_presigned_cli.py)."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlsplit

import httpx
import pytest

from app.artifacts import save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.storage.test_s3_storage import BUCKET, s3_env  # noqa: F401 - the module's S3 server fixture
from tests.support.factories import make_job, make_key

PAYLOAD = os.urandom(150_000)
NAME = "model/model.safetensors"


@pytest.fixture
def presigned(s3_env, settings_env):  # noqa: F811
    """Artifacts in the S3 store with presigned downloads on; the job's id."""
    settings_env(ARTIFACT_STORE=f"s3://{BUCKET}/api", ARTIFACT_PRESIGNED_URLS="true")
    job_id = make_job()
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, NAME, PAYLOAD)
    return job_id


def test_a_download_redirects_to_the_store_and_the_url_gives_the_bytes(client, presigned, s3_env):  # noqa: F811
    url = f"/api/jobs/{presigned}/artifacts/{NAME}"
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 307, response.text
    location = response.headers["location"]
    assert urlsplit(location).netloc == urlsplit(s3_env["AWS_ENDPOINT_URL"]).netloc
    assert response.headers["x-checksum-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    stored = httpx.get(location)  # no API key, no AWS credentials: the signature is the permission
    assert stored.status_code == 200 and stored.content == PAYLOAD
    assert 'filename="model.safetensors"' in stored.headers["content-disposition"]
    part = httpx.get(location, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == PAYLOAD[10:20]


def test_checks_come_first_and_404s_are_the_same(client, presigned):
    base = f"/api/jobs/{presigned}/artifacts"
    missing = client.get(f"{base}/nope.bin", follow_redirects=False)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    others = client.get(f"{base}/{NAME}", headers=make_key("mallory"), follow_redirects=False)
    assert others.status_code == 404 and "location" not in others.headers
    escape = client.get(f"{base}/..%2F..%2Fetc%2Fpasswd", follow_redirects=False)
    assert escape.status_code in (400, 404) and "location" not in escape.headers


def test_off_the_api_streams_from_the_store_as_before(client, presigned, settings_env):
    settings_env(ARTIFACT_PRESIGNED_URLS="false")
    response = client.get(f"/api/jobs/{presigned}/artifacts/{NAME}", follow_redirects=False)
    assert response.status_code == 200 and response.content == PAYLOAD
