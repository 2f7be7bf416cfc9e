"""The CLI's client against a real API process whose downloads redirect to presigned URLs of an
S3 store (ARTIFACT_PRESIGNED_URLS, moto's server): it follows the redirect without its API key
and still checks every file's sha256."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from app.artifacts import save_artifact
from app.cli.client import ClientError, VibetuneClient
from app.db import session_scope
from app.s3_storage import S3Storage
from tests.conftest import ADMIN_KEY
from tests.storage.test_s3_storage import BUCKET, s3_env  # noqa: F401 - the module's S3 server fixture
from tests.support.factories import make_job
from tests.support.live_service import LiveService

PAYLOAD = os.urandom(150_000)
NAME = "model/model.safetensors"
STORE = f"s3://{BUCKET}/cli"


@pytest.fixture(scope="module")
def presigning_api(s3_env, tmp_path_factory) -> Iterator[LiveService]:  # noqa: F811
    service = LiveService(tmp_path_factory.mktemp("presigning-api"), workers=False,
                          env={"ARTIFACT_STORE": STORE, "ARTIFACT_PRESIGNED_URLS": "true"})
    yield service
    service.stop()


def test_download_follows_the_redirect_without_the_key_and_checks_the_sha256(presigning_api, tmp_path,
                                                                             monkeypatch) -> None:
    job_id = make_job()
    with session_scope() as session:
        save_artifact(session, S3Storage.from_url(STORE, tmp_path / "cache"), job_id, NAME, PAYLOAD)
    sent: list[httpx.Request] = []
    send = httpx.Client.send

    def recording(self: httpx.Client, request: httpx.Request, **kwargs):
        sent.append(request)
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", recording)
    with VibetuneClient(presigning_api.url, api_key=ADMIN_KEY) as cli:
        [item] = cli.artifacts(str(job_id))
        out = tmp_path / "out"
        assert cli.download(item, out) is True
        assert (out / NAME).read_bytes() == PAYLOAD
        api, store = sent[-2:]
        assert api.url.path == item["url"] and api.headers["authorization"] == f"Bearer {ADMIN_KEY}"
        assert store.url.port != api.url.port and "X-Amz-Signature" in str(store.url)
        assert "authorization" not in store.headers, "the API key never reaches the store"

        (out / NAME).unlink()
        with pytest.raises(ClientError, match="checksum mismatch"):
            cli.download({**item, "sha256": "0" * 64}, out)
        assert not (out / NAME).exists(), "a file that does not match is not left behind"
