"""Which failures are outages of the installation's services (the job waits) rather than the job's
own (it fails), and which unfinished jobs the workers' sweep sends again."""

import uuid
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import kombu.exceptions
import pytest
import redis.exceptions
import sqlalchemy.exc

from workers.outages import describe, is_outage
from workers.recovery import STALE_QUEUED, UnfinishedJob, lost_jobs

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _db_down() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@pytest.mark.parametrize("error", [
    _db_down(),
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    kombu.exceptions.OperationalError("[Errno 111] Connection refused"),
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/b/k"),
])
def test_service_outages_are_told_apart(error):
    assert is_outage(error)


def test_an_outage_raised_through_other_errors_is_found_and_named():
    try:
        try:
            raise _db_down()
        except sqlalchemy.exc.OperationalError as inner:
            raise RuntimeError("progress could not be written") from inner
    except RuntimeError as outer:
        assert is_outage(outer)
        assert describe(outer).startswith("sqlalchemy OperationalError: ")


@pytest.mark.parametrize("error", [ValueError("bad row"), KeyError("label"), RuntimeError("CUDA out of memory"),
                                   sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))])
def test_the_jobs_own_failures_are_not_outages(error):
    assert not is_outage(error)


def job(status: str, *, lease: timedelta | None = None, idle: timedelta = timedelta(0), attempts: int = 1):
    return UnfinishedJob(uuid.uuid4(), status, NOW + lease if lease is not None else None, NOW - idle, attempts,
                         "default")


def test_running_jobs_are_lost_once_their_lease_lapsed():
    lapsed, held, unclaimed = job("running", lease=-timedelta(seconds=1)), job("running", lease=timedelta(5)), \
        job("running")
    assert lost_jobs([lapsed, held, unclaimed], NOW, broker_restarted=False) == [lapsed]


def test_queued_jobs_are_lost_when_the_broker_restarted_or_a_hand_off_sat_too_long():
    fresh, new_and_old = job("queued"), job("queued", idle=STALE_QUEUED * 2, attempts=0)
    stale_hand_off = job("queued", idle=STALE_QUEUED + timedelta(seconds=1))
    assert lost_jobs([fresh, new_and_old, stale_hand_off], NOW, broker_restarted=False) == [stale_hand_off]
    assert lost_jobs([fresh, new_and_old, stale_hand_off], NOW, broker_restarted=True) == \
        [fresh, new_and_old, stale_hand_off]
