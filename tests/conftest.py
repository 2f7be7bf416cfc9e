"""Test environment: a fresh real Postgres database and private Redis queues for each test run.

The variables are set before any app module reads its settings, so every test, and every worker
process a test starts, talks to this run's database and queues only.

The database is made only for the tiers that use services: each of them (`tests/db`, `tests/api`,
`tests/workers`, `tests/teacher`, `tests/training`, `tests/integration`) has a `conftest.py` whose
autouse fixture asks for `test_database`. `tests/unit` has none, so `pytest tests/unit` runs with
Postgres and Redis stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.teacher import TEST_TEACHER

RUN_ID = secrets.token_hex(4)
#: The admin key of this run's database: every test request and CLI call is signed with it
#: unless the test is about keys (tests/api/test_owners.py makes owners' keys of its own).
ADMIN_KEY = f"vt_test_admin_{secrets.token_urlsafe(24)}"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ADMIN_URL = os.environ.get("TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = f"vibetune_test_{RUN_ID}"
# This run's database, on the server that ADMIN_URL names.
TEST_DATABASE_URL = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=TEST_DB)
SCRATCH = Path(tempfile.mkdtemp(prefix=f"vibetune-test-{RUN_ID}-"))

os.environ.update(
    DATABASE_URL=TEST_DATABASE_URL.render_as_string(hide_password=False),
    REDIS_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
    QUEUE_PREFIX=f"test-{RUN_ID}-",
    ARTIFACT_DIR=str(SCRATCH / "artifacts"),
    WORK_DIR=str(SCRATCH / "work"),
    JOB_LEASE_SECONDS="6",
    TEACHER_URL="http://127.0.0.1:9/v1",  # nothing listens there; tests that need the teacher ask for it
    TEACHER_MODEL=TEST_TEACHER.name,  # the small model the test teacher serves (tests/support/teacher.py)
    JOB_HEARTBEAT_SECONDS="0.5",
    TRAIN_CHECKPOINT_SECONDS="0",  # tests of resuming need checkpoints from runs of seconds
    # Every test's jobs share this database whatever their queues: a worker's sweep would run jobs
    # other tests leave half-made. Tests of the sweep turn it on (bench/soak.py has its own database).
    RECOVERY_SWEEP_SECONDS="86400",
    ALLOWED_HOSTS="127.0.0.1,localhost,::1,testserver",  # testserver: Starlette's TestClient
    VIBETUNE_API_KEY=ADMIN_KEY,  # the CLI's key, in every `vibetune` a test runs
    MAX_ACTIVE_JOBS_PER_OWNER="1000",  # tests make many jobs as admin; tests/api/test_owners.py checks the limit
)

from app.config import get_settings  # noqa: E402  (after the environment is set)
from app.db import reset_engine  # noqa: E402
from tests.support.database import create_database, drop_database, migrate_to_head  # noqa: E402


@pytest.fixture(scope="session")
def test_database() -> Iterator[str]:
    """This run's database, migrated to head; dropped (and this run's queues deleted) when the run ends.

    Not autouse: the conftest of every tier that needs Postgres and Redis asks for it.
    """
    get_settings.cache_clear()
    reset_engine()
    url = os.environ["DATABASE_URL"]
    create_database(ADMIN_URL, TEST_DB)
    migrate_to_head(url)
    _store_admin_key()
    yield url
    reset_engine()
    drop_database(ADMIN_URL, TEST_DB)
    _drop_queues()


def _store_admin_key() -> None:
    from app.auth import ensure_admin_key
    from app.db import session_scope

    with session_scope() as session:
        ensure_admin_key(session, ADMIN_KEY)


def _drop_queues() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(f"{os.environ['QUEUE_PREFIX']}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def session():
    """A database session on this run's database (commits are real)."""
    from app.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def client():
    """The real app over ASGI (httpx), on the real database and broker, signed in as the admin."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False, headers=ADMIN_HEADERS) as c:
        yield c


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch):
    """Change settings for one test; the cached settings and engine are rebuilt around it."""

    def apply(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        reset_engine()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_engine()


def admin_connect() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True)


_teacher = None


def pytest_collection_modifyitems(session, config, items) -> None:
    """Start the real teacher early (in the background) if any selected test needs it."""
    global _teacher
    if any("teacher_url" in getattr(item, "fixturenames", ()) for item in items):
        from tests.support.teacher import TeacherServer  # noqa: PLC0415

        (SCRATCH / "logs").mkdir(parents=True, exist_ok=True)
        _teacher = TeacherServer(SCRATCH / "logs" / "teacher.log")


def pytest_sessionfinish(session, exitstatus) -> None:
    if _teacher is not None:
        _teacher.stop()
    if exitstatus == 0:  # keep artifacts and process logs of a failed run for inspection
        shutil.rmtree(SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def teacher_url() -> str:
    """Base URL of the real vLLM test teacher (TEST_TEACHER); TEACHER_URL points at it."""
    assert _teacher is not None
    url = _teacher.wait()
    os.environ["TEACHER_URL"] = url
    get_settings.cache_clear()
    return url


@pytest.fixture
def teacher_settings(teacher_url, settings_env):
    """Settings pointing at the real teacher, for in-process stage tests."""
    settings_env(TEACHER_URL=teacher_url)
    return get_settings()
