import pytest


@pytest.fixture(scope="session", autouse=True)
def services(test_database: str) -> str:
    """This tier runs on the real Postgres and Redis: this run's database and queues (tests/conftest.py)."""
    return test_database
