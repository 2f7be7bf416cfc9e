"""The service as separate processes, for tests that reach it the way people do (CLI, browser)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS
from tests.support.live_service import LiveService
from tests.support.s3 import make_bucket, s3_server

LIVE_BUCKET = "vibetune-live"


@pytest.fixture(scope="session", autouse=True)
def services(test_database: str) -> str:
    """This tier runs on the real Postgres and Redis: this run's database and queues (tests/conftest.py)."""
    return test_database


@pytest.fixture(scope="module")
def api_service(tmp_path_factory) -> Iterator[LiveService]:
    """The real API on a free port, with no workers: jobs stay queued unless a test moves them."""
    service = LiveService(tmp_path_factory.mktemp("api-only"), workers=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def live_service(teacher_url, tmp_path_factory) -> Iterator[LiveService]:
    """The real API with real default and gpu workers and the real vLLM teacher, as an installation
    of separate machines: no two processes share a disk, artifacts live in a real S3-compatible
    server (moto's, its own process), so every whole job here proves the no-shared-disk path."""
    logs = tmp_path_factory.mktemp("live")
    with s3_server(logs) as s3_env:
        make_bucket(s3_env, LIVE_BUCKET)
        # Checkpoints at most a minute apart, as in production (every save_steps is the test
        # default): the whole jobs' short runs then write none to the store, which costs CI minutes.
        # test_no_shared_disk.py starts a gpu worker of its own that checkpoints every save_steps.
        service = LiveService(logs, workers=True, env={"TEACHER_URL": teacher_url, "TRAIN_CHECKPOINT_SECONDS": "60"},
                              store={**s3_env, "ARTIFACT_STORE": f"s3://{LIVE_BUCKET}/installation"})
        yield service
        service.stop()


@pytest.fixture
def client(live_service) -> Iterator[httpx.Client]:
    """The live API process over HTTP, signed in as the admin. (Elsewhere `client` is the app in
    this process; here the test process shares no disk with the service, so it asks the API.)"""
    with httpx.Client(base_url=live_service.url, headers=ADMIN_HEADERS, timeout=600) as c:
        yield c
