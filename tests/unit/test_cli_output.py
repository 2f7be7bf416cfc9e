"""The text the `vibetune` client commands print, and the client's pure helpers (SSE parsing, paths)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli.client import ClientError, parse_sse, safe_path
from app.cli.output import (
    LineProgress,
    LiveProgress,
    age,
    download_summary,
    duration,
    error_text,
    has_scores,
    human_size,
    jobs_table,
    progress_bar,
    report_table,
    stage_line,
    stage_progress,
    status_text,
    truncate,
)

NOW = datetime(2025, 1, 2, 12, 0, 0, tzinfo=UTC)
JOB_ID = "2f1c0b8e-0000-4000-8000-000000000001"


def stage(name: str, status: str = "pending", progress: float = 0.0, **extra) -> dict:
    return {"name": name, "status": status, "progress": progress, "done": None, "total": None, "metrics": {},
            "error": None, "started_at": None, "finished_at": None, "eta_seconds": None, **extra}


def snapshot(status: str = "running", stages: list[dict] | None = None, **extra) -> dict:
    return {"id": JOB_ID, "owner": "local", "task": "sort tickets", "status": status, "stage": "generate",
            "progress": 0.3, "error": None, "created_at": (NOW - timedelta(minutes=3)).isoformat(),
            "warnings": [], "stages": stages or [], **extra}


@pytest.mark.parametrize("size, text", [(None, "-"), (0, "0 B"), (999, "999 B"), (1536, "1.5 KB"),
                                        (270_000_000, "270.0 MB"), (1_234_000_000, "1.23 GB")])
def test_human_size(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize("delta, text", [(timedelta(seconds=5), "5s ago"), (timedelta(minutes=3, seconds=59), "3m ago"),
                                         (timedelta(hours=5), "5h ago"), (timedelta(days=2, hours=1), "2d ago"),
                                         (timedelta(seconds=-3), "0s ago")])
def test_age(delta, text):
    assert age((NOW - delta).isoformat(), NOW) == text


def test_age_reads_utc_z_suffix_and_missing_times():
    assert age("2025-01-02T11:59:00Z", NOW) == "1m ago"
    assert age(None, NOW) == "-"


@pytest.mark.parametrize("seconds, text", [(None, "-"), (4.6, "5s"), (65, "1m 05s"), (7260, "2h 01m")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_truncate_keeps_one_line():
    assert truncate("a\nb  c", 10) == "a b c"
    assert truncate("x" * 20, 10) == "x" * 9 + "…"


def test_progress_bar_is_clamped():
    assert progress_bar(0.5, 10) == "[#####-----]"
    assert progress_bar(1.7, 4) == "[####]" and progress_bar(-1, 4) == "[----]"


def test_jobs_table_shows_one_row_per_job_and_says_when_there_are_more():
    text = jobs_table([snapshot(task="sort support tickets " * 10)], total=5, now=NOW)
    header, row, footer = text.splitlines()
    assert header.split() == ["ID", "STATUS", "STAGE", "PROGRESS", "AGE", "TASK"]
    assert row.split()[:6] == [JOB_ID, "running", "generate", "30%", "3m", "ago"]
    assert row.endswith("…") and len(row.split("ago  ")[1]) == 48
    assert footer == "(1 of 5 jobs; see more with --limit)"
    assert "no jobs yet" in jobs_table([], total=0)


def test_stage_line_shows_counts_and_eta_while_running():
    line = stage_line(stage("generate", "running", 0.5, done=100, total=200, eta_seconds=65))
    assert line.split() == ["generate", "[" + "#" * 12 + "-" * 12 + "]", "50%", "100/200", "eta", "1m", "05s"]
    assert stage_line(stage("plan", "failed", 0.2, error="teacher down")).endswith("failed  (teacher down)")


def test_a_running_stage_shows_its_items_per_minute():
    running = stage("label", "running", 0.5, done=100, total=200, eta_seconds=65, items_per_min=12.4)
    assert "100/200  12/min  eta 1m 05s" in stage_line(running)
    assert stage_progress(running) == "label: 50% (100/200, 12/min, eta 1m 05s)"
    assert "0.5/min" in stage_line({**running, "items_per_min": 0.54})
    assert "/min" not in stage_line({**running, "status": "succeeded", "progress": 1.0})
    assert "/min" not in stage_line({**running, "items_per_min": None})


def test_line_progress_prints_start_each_quarter_and_the_end():
    progress = LineProgress()
    seen = []
    for fraction in (0.0, 0.1, 0.26, 0.3, 0.55, 0.99):
        seen += progress.update(snapshot(stages=[stage("plan", "succeeded", 1.0),
                                                 stage("generate", "running", fraction, done=int(fraction * 100),
                                                       total=100)]))
    seen += progress.update(snapshot("succeeded", stages=[stage("plan", "succeeded", 1.0),
                                                          stage("generate", "succeeded", 1.0)]))
    assert seen == [f"job {JOB_ID}: running", "plan: succeeded", "generate: started", "generate: 26% (26/100)",
                    "generate: 55% (55/100)", "generate: 99% (99/100)", "generate: succeeded",
                    f"job {JOB_ID}: succeeded"]


def test_line_progress_starts_over_for_a_resumed_stage():
    progress = LineProgress()
    progress.update(snapshot(stages=[stage("train", "running", 0.6)]))
    progress.update(snapshot("failed", stages=[stage("train", "failed", 0.6, error="oom")]))
    assert progress.update(snapshot("queued", stages=[stage("train")])) == [f"job {JOB_ID}: queued"]
    assert progress.update(snapshot(stages=[stage("train", "running", 0.3)])) == [
        f"job {JOB_ID}: running", "train: started", "train: 30%"]


def test_live_progress_redraws_in_place():
    live = LiveProgress()
    first = live.update(snapshot(stages=[stage("plan", "running", 0.5), stage("generate")]))
    assert not first.startswith("\x1b[") and first.count("\n") == 3
    second = live.update(snapshot(stages=[stage("plan", "succeeded", 1.0), stage("generate", "running", 0.1)]))
    assert second.startswith("\x1b[3A") and second.count("\x1b[2K") == 3
    assert "plan" in second and "succeeded" in second


REPORT = {
    "teacher": {"accuracy": 0.9, "macro_f1": 0.8912, "n": 10, "latency_ms": {"p50": 812.04, "p95": 900, "n": 10}},
    "base_student": {"accuracy": 0.5, "n": 10, "latency_ms": {"p50": 20.0, "p95": 25, "n": 10},
                     "size_bytes": 270_000_000},
    "student": {"accuracy": 0.72, "accuracy_ci95": [0.6, 0.8], "macro_f1": 0.7, "n": 10,
                "latency_ms": {"p50": 21.0, "p95": 25, "n": 10}, "size_bytes": 270_000_000},
    "verdict": "retune", "verdict_reason": "behind_teacher", "closed": 0.55,
    "warnings": [{"code": "weak_teacher", "message": "the teacher scores 0.9"}],
}


def test_report_table():
    lines = report_table(REPORT).splitlines()
    assert lines[0].split() == ["MODEL", "ACCURACY", "95%", "CI", "MACRO-F1", "P50", "MS", "SIZE"]
    assert lines[1].split() == ["teacher", "0.900", "-", "0.891", "812.0", "-"]
    assert lines[2].split() == ["untuned", "student", "0.500", "-", "-", "20.0", "270.0", "MB"]
    assert lines[3].split() == ["tuned", "student", "0.720", "0.60-0.80", "0.700", "21.0", "270.0", "MB"]
    assert lines[4:] == ["verdict: retune (the tuned student is behind the teacher beyond its interval)",
                         "gap closed: 0.55 of untuned -> teacher", "tuned/teacher accuracy: 0.80",
                         "warning: the teacher scores 0.9"]


def test_report_table_of_a_data_only_job_has_dashes():
    text = report_table({"teacher": REPORT["teacher"], "base_student": None, "student": None, "verdict": None})
    assert text.splitlines()[3].split() == ["tuned", "student", "-", "-", "-", "-", "-"]
    assert "verdict: -" in text and "tuned/teacher" not in text
    assert has_scores({"teacher": REPORT["teacher"]}) and not has_scores({"teacher": None, "student": None})


def test_status_text_lists_stages_error_and_warnings():
    job = snapshot("failed", stages=[stage("plan", "succeeded", 1.0), stage("generate", "failed", 0.4)],
                   error={"code": "teacher_unreachable", "message": "no answer"},
                   warnings=[{"code": "weak_teacher", "message": "scores 0.4"}])
    text = status_text(job, NOW)
    assert f"job       {JOB_ID}" in text and "status    failed" in text and "created   3m ago" in text
    assert "error     teacher_unreachable: no answer" in text
    assert any(line.split() == ["generate", "failed", "40%", "-"] for line in text.splitlines())
    assert text.endswith("warnings:\n  weak_teacher: scores 0.4")
    running = status_text(snapshot(stages=[stage("generate", "running", 0.3, eta_seconds=90)]), NOW)
    assert "(stage generate, 30%)" in running and "1m 30s" in running


def test_error_text_and_download_summary():
    failed = snapshot("failed", error={"code": "oom", "message": "out of memory"})
    assert error_text(failed) == f"job {JOB_ID} failed: out of memory [oom]"
    assert error_text(snapshot("canceled")) == f"job {JOB_ID} canceled"
    assert download_summary(1, 10, "out") == "1 file, 10 B in out"
    assert download_summary(2, 2048, "out") == "2 files, 2.0 KB in out"


def test_parse_sse_skips_comments_and_retry_and_joins_data_lines():
    lines = ["retry: 3000", "", ": keepalive", "", "event: job", 'data: {"id": "x",', 'data: "status": "running"}', "",
             "event: end", 'data:{"id":"x","status":"succeeded"}', ""]
    assert list(parse_sse(lines)) == [("job", {"id": "x", "status": "running"}),
                                      ("end", {"id": "x", "status": "succeeded"})]


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "model/../../x", "a\\b", ""])
def test_safe_path_refuses_names_that_leave_the_folder(name):
    with pytest.raises(ClientError, match="unsafe artifact name"):
        safe_path(Path("out"), name)


def test_safe_path_makes_subfolders():
    assert safe_path(Path("out"), "model/config.json") == Path("out/model/config.json")


def test_client_error_lines_do_not_repeat_validation_fields():
    fields = [{"field": "labels", "message": "give at least two labels"}]
    assert ClientError("labels: give at least two labels", fields).lines() == [
        "vibetune: the server refused the request:", "  labels: give at least two labels"]
    assert ClientError("job 'x' not found").lines() == ["vibetune: job 'x' not found"]
    assert ClientError("bad input", fields).lines() == ["vibetune: bad input", "  labels: give at least two labels"]
