"""How `make up`'s supervisor starts a dead process again: the back-off rule, and the supervisor
tending real (tiny) child processes. No services."""

from __future__ import annotations

import sys
import time

import pytest

from app.cli.supervisor import Backoff, Service, Supervisor


def test_the_back_off_doubles_resets_after_a_stable_run_and_gives_up_on_a_crash_loop():
    backoff = Backoff(first=1, most=8, stable=60, attempts=5)
    assert [backoff.after_exit(ran=2) for _ in range(4)] == [1, 2, 4, 8]
    assert backoff.after_exit(ran=2) is None, "the fifth quick death in a row: a broken setup"
    assert Backoff(first=1, most=8).after_exit(ran=3600) == 1
    settled = Backoff(first=1, most=8, stable=60, attempts=3)
    assert [settled.after_exit(ran) for ran in (2, 2, 100, 2)] == [1, 2, 1, 2], "a long run resets the count"


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def tend_until(sup: Supervisor, done, timeout: float = 20) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        broken = sup.tend()
        if broken is not None or done():
            return broken
        time.sleep(0.05)
    raise TimeoutError("the supervisor did not get there")


@pytest.fixture
def sup():
    made: list[Supervisor] = []

    def make(*specs: Service, **backoff) -> Supervisor:
        made.append(Supervisor(list(specs), backoff=lambda: Backoff(**backoff)))
        made[-1].start()
        return made[-1]

    yield make
    for each in made:
        each.stop(grace=2)


def test_a_killed_process_is_started_again_and_the_others_keep_running(sup):
    supervisor = sup(Service("worker", python("import time; time.sleep(60)")),
                     Service("api", python("import time; time.sleep(60)")), first=0.1, stable=30)
    worker, api = supervisor.procs["worker"].pid, supervisor.procs["api"].pid
    supervisor.procs["worker"].kill()
    assert tend_until(supervisor, lambda: supervisor.restarts["worker"] == 1) is None
    assert supervisor.procs["worker"].pid != worker and supervisor.procs["worker"].poll() is None
    assert supervisor.procs["api"].pid == api and supervisor.restarts["api"] == 0


def test_a_process_that_keeps_dying_at_start_is_given_up(sup):
    supervisor = sup(Service("teacher", python("raise SystemExit(3)")), first=0.05, most=0.1, stable=30, attempts=3)
    assert tend_until(supervisor, lambda: False) == "teacher"
    assert supervisor.restarts["teacher"] == 2, "started three times in all"
