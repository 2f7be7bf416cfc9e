"""The job lifecycle table itself (pure logic)."""

from app.jobs import ALLOWED_TRANSITIONS, sources_of
from app.models import JobStatus

Q, R, S, F, C = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED


def test_every_status_has_an_entry():
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)


def test_lifecycle_edges():
    assert ALLOWED_TRANSITIONS[Q] == {R, C, F}
    assert ALLOWED_TRANSITIONS[R] == {R, S, F, C, Q}, "running -> running is a lease takeover"
    for finished in (S, F, C):
        assert ALLOWED_TRANSITIONS[finished] == {Q}, "a finished job can only be resumed"


def test_sources_of_success_is_only_running():
    assert sources_of(S) == {R}
    assert sources_of(C) == {Q, R}
    assert sources_of(Q) == {R, S, F, C}


def test_finished_property():
    assert {s for s in JobStatus if s.finished} == {S, F, C}
