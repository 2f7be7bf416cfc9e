"""Telling an outage of the installation's own services (the database, the broker, the object
store) from a failure of the job itself.

A stage that hits an outage has done nothing wrong: failing its job would throw away work that
resumes fine once the service is back (teacher answers are kept as they come, training keeps
checkpoints). The pipeline leaves such a job running and lets its lease lapse; it is run again
(`workers.tasks`, or the sweep in `workers.sweeper` when the broker was down too).
"""

from __future__ import annotations

from collections.abc import Iterator


def _outage_types() -> tuple[type[BaseException], ...]:
    import botocore.exceptions as boto
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    return (
        sqlalchemy.exc.OperationalError,  # connection refused, server restarting, connection dropped
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.DisconnectionError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        kombu.exceptions.OperationalError,
        boto.EndpointConnectionError,
        boto.ConnectionClosedError,
        boto.ConnectTimeoutError,
        boto.ReadTimeoutError,
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_outage(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a service of the installation being
    unreachable (as opposed to a bug or bad data, which fail the job)."""
    types = _outage_types()
    return any(isinstance(link, types) for link in _chain(exc))


def describe(exc: BaseException) -> str:
    """One line naming the outage: the first unreachable service's error in the chain."""
    types = _outage_types()
    link = next((link for link in _chain(exc) if isinstance(link, types)), exc)
    first_line = (str(link).splitlines() or [""])[0]
    return f"{type(link).__module__.split('.')[0]} {type(link).__name__}: {first_line}"
