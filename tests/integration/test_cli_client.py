"""The `vibetune` job client commands, run as the installed console script against the real API
(no workers: the tests move jobs along with the real status writers, the way a worker does)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import job_stages, jobs
from app.artifacts import artifact_key, save_artifact
from app.db import session_scope
from app.models import Job, JobStatus, StageStatus
from app.storage import get_storage
from tests.support import http
from tests.support.factories import make_finished_job, make_job
from tests.support.processes import free_port

BIN = Path(sys.executable).parent / "vibetune"
JOB_ID = re.compile(r"submitted job ([0-9a-f-]{36})")


def vibetune(service, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN, *args, "--url", service.url], capture_output=True, text=True, cwd=cwd, timeout=60)


def api_status(service, job_id: str) -> str:
    return http.get(f"{service.url}/api/jobs/{job_id}").json()["status"]


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vibetune: "), result.stderr
    return lines[0]


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before it starts: Ctrl-C's default action, as a terminal gives it. A test run
    started in the background (`make test &`) has SIGINT ignored, the child would inherit that, and
    Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Following:
    """`vibetune tune` running in the background; its output lines are collected as they come."""

    def __init__(self, service, *args: str) -> None:
        # faulthandler: a CLI that hangs is made to print where (see `finish`).
        self.proc = subprocess.Popen([BIN, "tune", *args, "--url", service.url], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                     preexec_fn=_ctrl_c_as_in_a_terminal)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; output so far: {self.lines}")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        assert self.proc.stderr is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack to stderr
            self.proc.wait(timeout=30)
            raise AssertionError(f"the CLI did not exit within {timeout} s; output: {self.lines}; "
                                 f"stderr with its stacks:\n{self.proc.stderr.read()}") from None
        self._reader.join(timeout=5)
        return code, "\n".join(self.lines), self.proc.stderr.read()

    def job_id(self) -> uuid.UUID:
        job_id = uuid.UUID(self.wait_for(JOB_ID.pattern).group(1))
        self.wait_for(rf"job {job_id}: queued")  # the CLI is watching the job's events now
        return job_id

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def following() -> Iterator[Callable[..., Following]]:
    started: list[Following] = []

    def start(service, *args: str) -> Following:
        started.append(Following(service, *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def test_jobs_lists_a_created_job(api_service):
    job_id = make_job(task="label customer reviews as positive or negative (cli listing)")
    result = vibetune(api_service, "jobs", "--limit", "200")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if str(job_id) in line)
    assert "queued" in line and "0%" in line and "ago" in line and "label customer reviews" in line
    assert result.stdout.splitlines()[0].split() == ["ID", "STATUS", "STAGE", "PROGRESS", "AGE", "TASK"]


@pytest.mark.parametrize("job_id", ["abc", str(uuid.UUID(int=7))])
def test_status_of_an_unknown_job_is_one_line(api_service, job_id):
    line = assert_one_error_line(vibetune(api_service, "status", job_id))
    assert line == f"vibetune: job {job_id!r} not found"


def test_a_server_that_is_down_is_one_clear_line():
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([BIN, "--url", url, "jobs"], capture_output=True, text=True, timeout=60)
    line = assert_one_error_line(result)
    assert f"cannot reach the vibetune server at {url}" in line and "VIBETUNE_URL" in line


def test_an_invalid_request_shows_the_api_message_naming_the_field(api_service):
    result = vibetune(api_service, "tune", "sort mail into spam", "--labels", "spam", "--detach")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "labels: give at least two labels" in result.stderr
    assert result.stderr.startswith("vibetune: ")


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "is empty"),
    ("text,label\nhello,spam\n", "no input or output column"),
    ("input,output\n", "no rows"),
])
def test_unusable_csv_files_exit_2(api_service, tmp_path, content, message):
    path = tmp_path / "examples.csv"
    if content is not None:
        path.write_text(content)
    result = vibetune(api_service, "tune", "sort mail", "--labels", "spam,ham", "--examples", str(path), "--detach")
    line = assert_one_error_line(result, code=2)
    assert message in line and str(path) in line


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def submitted_spec(service, result: subprocess.CompletedProcess[str]) -> dict:
    """The stored spec of the job a `tune --detach` submitted (canceled again, so it never runs)."""
    assert result.returncode == 0, result.stderr
    submitted = JOB_ID.search(result.stdout)
    assert submitted, result.stdout
    job_id = submitted.group(1)
    spec = http.get(f"{service.url}/api/jobs/{job_id}").json()["spec"]
    http.post(f"{service.url}/api/jobs/{job_id}/cancel")
    return spec


def test_tune_sends_fields_tools_and_json_lines_rows(api_service, tmp_path):
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps({"input": "Table for 4 on Friday", "output": {"party_size": 4, "day": "Friday"}}) + "\n")
    spec = submitted_spec(api_service, vibetune(
        api_service, "tune", "pull booking details out of emails (cli fields)", "--fields",
        "party_size:how many people:integer,day:the day", "--examples", str(seed), "--detach"))
    assert spec["task_type"] == "extraction"
    assert spec["fields"] == [{"name": "party_size", "description": "how many people", "type": "integer", "span": True},
                              {"name": "day", "description": "the day", "type": "string", "span": True}]
    assert spec["examples"] == [{"input": "Table for 4 on Friday", "output": '{"party_size": 4, "day": "Friday"}'}]

    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "properties": {
        "day": {"type": ["string", "null"], "description": "the day"}}}))
    spec = submitted_spec(api_service, vibetune(api_service, "tune", "pull the day (cli schema)", "--task-type",
                                                "extraction", "--fields", f"@{tmp_path / 'schema.json'}", "--detach"))
    assert spec["fields"] == [{"name": "day", "description": "the day", "type": "string", "span": True}]

    (tmp_path / "tools.json").write_text(json.dumps({"tools": [WEATHER]}))
    (tmp_path / "test.csv").write_text('input,output\n"Weather in Paris?","{""name"": ""get_weather"", '
                                       '""arguments"": {""city"": ""Paris""}}"\nThanks!,\n')
    spec = submitted_spec(api_service, vibetune(api_service, "tune", "answer weather questions (cli tools)",
                                                "--tools", str(tmp_path / "tools.json"), "--test",
                                                str(tmp_path / "test.csv"), "--detach"))
    assert spec["task_type"] == "tool_calling" and spec["tools"] == [WEATHER]
    assert spec["test_set"] == [
        {"input": "Weather in Paris?", "output": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
        {"input": "Thanks!", "output": ""}]


@pytest.mark.parametrize("option, content, message", [
    ("--tools", None, "tools.json: no such file"),
    ("--tools", '[{"type": "function",', "tools.json is not valid JSON: Expecting property name enclosed in "
                                         "double quotes (line 1, column 22)"),
    ("--tools", '{"name": "get_weather"}', "tools.json: expected a JSON list of tools"),
    ("--fields", "{", "tools.json is not valid JSON"),
], ids=["missing-file", "bad-json", "not-a-list", "bad-fields-json"])
def test_unusable_tools_and_fields_files_exit_2_before_any_request(tmp_path, option, content, message):
    path = tmp_path / "tools.json"
    if content is not None:
        path.write_text(content)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: any request would fail differently
    value = f"@{path}" if option == "--fields" else str(path)
    result = subprocess.run([BIN, "--url", url, "tune", "a task", option, value, "--detach"],
                            capture_output=True, text=True, timeout=60)
    line = assert_one_error_line(result, code=2)
    assert message in line, line


def test_the_servers_field_errors_are_listed_one_line_each(api_service, tmp_path):
    (tmp_path / "tools.json").write_text(json.dumps([WEATHER, WEATHER, {"type": "tool", "function": {"name": "x"}}]))
    result = vibetune(api_service, "tune", "answer weather questions", "--tools", str(tmp_path / "tools.json"),
                      "--detach")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == ["vibetune: the server refused the request:",
                                          "  tools.1.function.name: duplicate tool name 'get_weather'",
                                          "  tools.2.type: must be 'function'"]
    (tmp_path / "test.csv").write_text("input,output\nTable for 2,two people\n")
    result = vibetune(api_service, "tune", "pull booking details", "--fields", "party_size", "--test",
                      str(tmp_path / "test.csv"), "--detach")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == ["vibetune: the server refused the request:",
                                          "  test_set.0.output: must be the JSON object of the fields (as JSON text)"]


def test_detach_cancel_resume_cancel(api_service, tmp_path):
    (tmp_path / "seed.csv").write_text("input,output\nWIN a free cruise now,spam\n\"see you at 6, ok?\",ham\n")
    (tmp_path / "test.csv").write_text("output,input\nham,lunch tomorrow?\n")
    result = vibetune(api_service, "tune", "decide whether an SMS is spam", "--labels", "spam, ham",
                      "--examples", str(tmp_path / "seed.csv"), "--test", str(tmp_path / "test.csv"),
                      "--num-examples", "40", "--until", "data", "--detach")
    assert result.returncode == 0, result.stderr
    job_id = JOB_ID.search(result.stdout).group(1)
    job = http.get(f"{api_service.url}/api/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert job["spec"]["labels"] == ["spam", "ham"] and job["spec"]["num_examples"] == 40
    assert job["spec"]["until"] == "data"
    assert job["spec"]["examples"] == [{"input": "WIN a free cruise now", "output": "spam"},
                                       {"input": "see you at 6, ok?", "output": "ham"}]
    assert job["spec"]["test_set"] == [{"input": "lunch tomorrow?", "output": "ham"}]

    result = vibetune(api_service, "cancel", job_id)
    assert result.returncode == 0 and "canceled" in result.stdout, result.stderr
    assert api_status(api_service, job_id) == "canceled"
    line = assert_one_error_line(vibetune(api_service, "cancel", job_id))
    assert "already canceled" in line

    result = vibetune(api_service, "resume", job_id, "--detach")
    assert result.returncode == 0 and "queued" in result.stdout, result.stderr
    assert api_status(api_service, job_id) == "queued"
    assert vibetune(api_service, "cancel", job_id).returncode == 0
    assert api_status(api_service, job_id) == "canceled"


FILES = {"model/config.json": b'{"model_type": "llama"}', "model/weights.bin": bytes(range(256)) * 300,
         "reports/summary.txt": b"all good\n"}


def store(job_id: uuid.UUID, files: dict[str, bytes]) -> None:
    with session_scope() as session:
        for name, data in files.items():
            save_artifact(session, get_storage(), job_id, name, data)


def test_download_fetches_verified_files_then_skips_them(api_service, tmp_path):
    job_id = make_finished_job()
    store(job_id, FILES)
    out = tmp_path / "out"
    result = vibetune(api_service, "download", str(job_id), "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name, data in FILES.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        assert name in result.stdout
    assert "3 files, 76.8 KB in" in result.stdout.splitlines()[-1]
    assert not list(out.rglob(".*.part"))

    again = vibetune(api_service, "download", str(job_id), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(already here)") == 3


def test_download_defaults_to_a_folder_named_after_the_job(api_service, tmp_path):
    job_id = make_finished_job()
    store(job_id, {"dataset.jsonl": b'{"input": "a", "output": "b"}\n'})
    result = vibetune(api_service, "download", str(job_id), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"vibetune-{job_id}" / "dataset.jsonl").is_file()


def test_a_corrupted_artifact_is_refused_and_not_left_behind(api_service, tmp_path):
    job_id = make_finished_job()
    store(job_id, {"model/config.json": b'{"model_type": "llama"}'})
    expected = hashlib.sha256(b'{"model_type": "llama"}').hexdigest()
    get_storage().local_path(artifact_key(job_id, "model/config.json")).write_bytes(b'{"model_type": "evil"}')
    out = tmp_path / "out"
    line = assert_one_error_line(vibetune(api_service, "download", str(job_id), "--out", str(out)))
    actual = hashlib.sha256(b'{"model_type": "evil"}').hexdigest()
    assert line == f"vibetune: checksum mismatch for model/config.json (expected {expected}, got {actual})"
    assert [p for p in out.rglob("*") if p.is_file()] == []


EVALUATION = {
    "teacher": {"accuracy": 0.9, "macro_f1": 0.89, "n": 20, "latency_ms": {"p50": 812.0, "p95": 990.0, "n": 20}},
    "base_student": {"accuracy": 0.5, "macro_f1": 0.33, "n": 20, "latency_ms": {"p50": 20.5, "p95": 30.0, "n": 20},
                     "size_bytes": 270_000_000},
    "student": {"accuracy": 0.88, "accuracy_ci95": [0.7, 0.97], "macro_f1": 0.87, "n": 20,
                "latency_ms": {"p50": 21.0, "p95": 31.0, "n": 20}, "size_bytes": 270_000_000},
    "verdict": "deploy", "verdict_reason": "reaches_teacher", "closed": 0.95,
}


def step() -> None:
    time.sleep(1.3)  # longer than the API's event poll (1 s), so the CLI sees every state


def test_tune_follows_a_job_to_its_report_and_artifacts(api_service, tmp_path, following):
    out = tmp_path / "model-out"
    cli = following(api_service, "sort support tickets (cli follow)", "--labels", "billing,shipping", "--out", str(out))
    job_id = cli.job_id()
    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        job_stages.start_stage(session, job_id, "plan", 0.0)
    step()
    for done in (30, 60):
        with session_scope() as session:
            job_stages.record_progress(session, job_id, "plan", done, 100, done / 800)
        step()
    with session_scope() as session:
        stages = [s.name for s in session.get(Job, job_id).stages]
        for name in stages:
            job_stages.finish_stage(session, job_id, name, StageStatus.SUCCEEDED,
                                    EVALUATION if name == "evaluate" else {})
        save_artifact(session, get_storage(), job_id, "model/config.json", b'{"model_type": "llama"}')
        jobs.finish(session, job_id, token, JobStatus.SUCCEEDED, progress=1.0, stage=None)

    code, stdout, stderr = cli.finish()
    assert code == 0, (stdout, stderr)
    for expected in ("plan: started", "plan: 30% (30/100", "plan: 60% (60/100", "plan: succeeded",
                     "package: succeeded", f"job {job_id}: succeeded",
                     "verdict: deploy (the tuned student's 95% interval reaches the teacher's score)",
                     "gap closed: 0.95 of untuned -> teacher",
                     "tuned/teacher accuracy: 0.98", "model/config.json", "1 file, 23 B in"):
        assert expected in stdout, stdout
    assert re.search(r"tuned student\s+0\.880\s+0\.70-0\.97\s+0\.870\s+21\.0\s+270\.0 MB", stdout), stdout
    assert (out / "model" / "config.json").read_bytes() == b'{"model_type": "llama"}'


def test_tune_exits_1_with_the_error_of_a_failed_job(api_service, tmp_path, following):
    cli = following(api_service, "sort support tickets (cli failure)", "--out", str(tmp_path / "out"))
    job_id = cli.job_id()
    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        job_stages.start_stage(session, job_id, "plan", 0.0)
    step()
    with session_scope() as session:
        job_stages.finish_stage(session, job_id, "plan", StageStatus.FAILED, error="the teacher did not answer")
        jobs.finish(session, job_id, token, JobStatus.FAILED, error_code="teacher_unreachable",
                    error_message="the teacher did not answer")

    code, stdout, stderr = cli.finish()
    assert code == 1, (stdout, stderr)
    assert "plan: failed (the teacher did not answer)" in stdout
    assert stderr.strip() == f"vibetune: job {job_id} failed: the teacher did not answer [teacher_unreachable]"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_following_leaves_the_job_running(api_service, following):
    cli = following(api_service, "sort support tickets (cli interrupt)", "--labels", "a,b")
    job_id = cli.job_id()
    cli.proc.send_signal(signal.SIGINT)
    code, _, stderr = cli.finish(timeout=60)
    assert code == 130
    assert "Traceback" not in stderr
    assert "keeps running on the server" in stderr and f"vibetune status {job_id}" in stderr
    assert api_status(api_service, str(job_id)) == "queued"
    with session_scope() as session:
        jobs.cancel(session, job_id)


def test_keys_create_list_revoke_and_whoami(api_service, monkeypatch):
    made = vibetune(api_service, "keys", "create", "--owner", "lena", "--name", "cli test")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert re.fullmatch(r"vt_[A-Za-z0-9_-]{43}", key), made.stdout
    assert "for lena (shown once" in made.stderr
    listed = vibetune(api_service, "keys", "list")
    assert listed.returncode == 0 and "lena" in listed.stdout and key[:11] in listed.stdout
    assert key not in listed.stdout, "a list never shows a key"
    mine = vibetune(api_service, "whoami", "--api-key", key)
    assert mine.returncode == 0 and mine.stdout.strip() == "lena"
    assert vibetune(api_service, "whoami").stdout.strip() == "admin (admin)"  # VIBETUNE_API_KEY
    refused = vibetune(api_service, "keys", "create", "--owner", "mallory", "--api-key", key)
    assert "needs an admin key" in assert_one_error_line(refused)
    key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "lena" in line)
    assert vibetune(api_service, "keys", "revoke", key_id).stdout.strip() == f"revoked key {key_id}"
    gone = vibetune(api_service, "jobs", "--api-key", key)
    assert "unknown or revoked (pass --api-key or set VIBETUNE_API_KEY)" in assert_one_error_line(gone)
    monkeypatch.delenv("VIBETUNE_API_KEY")
    anonymous = vibetune(api_service, "jobs")
    assert "an API key is required" in assert_one_error_line(anonymous)
