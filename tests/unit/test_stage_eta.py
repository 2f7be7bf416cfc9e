"""A running stage's ETA comes from its own pace so far."""

from datetime import UTC, datetime, timedelta

from app.job_stages import stage_eta

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_eta_extrapolates_the_pace_so_far():
    assert stage_eta("running", 0.25, NOW - timedelta(seconds=30), NOW) == 90.0
    assert stage_eta("running", 0.5, NOW - timedelta(minutes=10), NOW) == 600.0


def test_no_eta_without_a_pace_or_for_stages_not_running():
    assert stage_eta("running", 0.0, NOW - timedelta(seconds=30), NOW) is None
    assert stage_eta("running", 0.5, None, NOW) is None
    assert stage_eta("succeeded", 1.0, NOW - timedelta(seconds=30), NOW) is None
    assert stage_eta("pending", 0.5, NOW, NOW) is None
