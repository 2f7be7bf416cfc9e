"""The service as separate processes, for tests that reach it the way people do (CLI, browser)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_service import LiveService


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
    """The real API with real default and gpu workers and the real vLLM teacher."""
    service = LiveService(tmp_path_factory.mktemp("live"), workers=True, env={"TEACHER_URL": teacher_url})
    yield service
    service.stop()
