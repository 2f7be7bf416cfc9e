import pytest

from app.config import get_settings
from tests.support.processes import start_worker


@pytest.fixture(scope="session", autouse=True)
def services(test_database: str) -> str:
    """This tier runs on the real Postgres and Redis: this run's database and queues (tests/conftest.py)."""
    return test_database


@pytest.fixture(scope="session")
def workers():
    """A real default worker (2 processes) and gpu worker (1), running the recording stages."""
    log_dir = get_settings().work_dir.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    default = start_worker("default", log_dir / "worker-default.log", concurrency=2)
    gpu = start_worker("gpu", log_dir / "worker-gpu.log", concurrency=1)
    yield {"default": default, "gpu": gpu}
    for worker in (default, gpu):
        worker.stop()
