"""Every bad input is a 4xx with the error envelope, naming the field; never a 500."""

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, inspect

from app import jobs
from app.api.limits import MAX_PAGE_OFFSET
from app.config import get_settings
from app.db import get_engine, session_scope
from tests.conftest import ADMIN_HEADERS, SCRATCH
from tests.support import http
from tests.support.factories import make_job, make_trainable_job, sms_training_rows
from tests.support.live_service import LiveService

LIMITS = get_settings()

BAD_BODIES = [
    ({}, "task"),
    ({"task": ""}, "task"),
    ({"task": "   "}, "task"),
    ({"task": "x" * (LIMITS.max_task_chars + 1)}, "task"),
    ({"task": 42}, "task"),
    ({"task": "t", "task_type": "poetry"}, "task_type"),
    ({"task": "t", "labels": "spam,ham"}, "labels"),
    ({"task": "t", "labels": ["spam"]}, "labels"),
    ({"task": "t", "labels": ["spam", "spam"]}, "labels"),
    ({"task": "t", "labels": ["x" * (LIMITS.max_label_chars + 1), "ham"]}, "labels"),
    ({"task": "t", "examples": [{"input": "hi"}]}, "examples.0.output"),
    ({"task": "t", "examples": ["hi"]}, "examples.0"),
    ({"task": "t", "test_set": {"input": "a", "output": "b"}}, "test_set"),
    ({"task": "t", "labels": ["a", "b"], "test_set": [{"input": "x", "output": "c"}]}, "test_set.0.output"),
    ({"task": "t", "num_examples": 0}, "num_examples"),
    ({"task": "t", "num_examples": -5}, "num_examples"),
    ({"task": "t", "num_examples": 2.5}, "num_examples"),
    ({"task": "t", "num_examples": LIMITS.max_num_examples + 1}, "num_examples"),
    ({"task": "t", "until": "forever"}, "until"),
    ({"task": "t", "teacher": "no-such-model"}, "teacher"),
    ({"task": "t", "student": ""}, "student"),
    ({"task": "t", "student": "/etc"}, "student"),
    ({"task": "t", "training": {"distillation": "on_policy", "teacher_weights": "/etc"}}, "training.teacher_weights"),
    ({"task": "t", "training": {"epochs": 0}}, "training.epochs"),
    ({"task": "t", "training": {"optimizer": "adam"}}, "training.optimizer"),
    ({"task": "t", "training": "fast"}, "training"),
    ({"task": "t", "surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_bad_job_body_is_422_naming_the_field(client, body, field):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]
    assert field in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"task"', b""])
def test_malformed_json_is_422(client, raw):
    response = client.post("/api/jobs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_bad_input_creates_no_job(client):
    before = client.get("/api/jobs").json()["total"]
    client.post("/api/jobs", json={"task": "t", "num_examples": 0})
    assert client.get("/api/jobs").json()["total"] == before


HUGE = "9223372036854775808"  # 2**63: one past Postgres' bigint (once a 500)


@pytest.mark.parametrize(
    "query,field",
    [("limit=0", "limit"), ("limit=1000", "limit"), ("offset=-1", "offset"), ("limit=ten", "limit"),
     (f"offset={HUGE}", "offset"), (f"limit={HUGE}", "limit"), (f"offset=-{HUGE}", "offset"),
     (f"offset={MAX_PAGE_OFFSET + 1}", "offset")],
)
def test_bad_paging_is_422(client, query, field):
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == field


def test_every_paged_route_bounds_its_integers(client):
    job_id = make_job()
    assert client.get(f"/api/jobs?offset={MAX_PAGE_OFFSET}").json()["items"] == []
    for path in (f"/api/jobs/{job_id}/examples", f"/api/jobs/{job_id}/predictions", "/api/events/jobs"):
        for query, field in ((f"offset={HUGE}", "offset"), (f"limit={HUGE}", "limit")):
            if path.endswith("/jobs") and field == "offset":
                continue  # the stream takes a limit only
            response = client.get(f"{path}?{query}")
            assert response.status_code == 422, (path, query, response.text)
            assert response.json()["error"]["fields"][0]["field"] == field


def test_unknown_route_and_method_use_the_envelope(client):
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/api/jobs")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


# --- text Postgres cannot store: NUL characters and lone surrogates ----------------------------

NUL, SURROGATE = "a\x00b", "a\ud800b"


def _text_bodies(bad: str) -> list[tuple[dict[str, Any], str]]:
    return [
        ({"task": bad}, "task"),
        ({"task": "t", "labels": [bad, "b"]}, "labels.0"),
        ({"task": "t", "examples": [{"input": bad, "output": "o"}]}, "examples.0.input"),
        ({"task": "t", "examples": [{"input": "i", "output": bad}]}, "examples.0.output"),
        ({"task": "t", "test_set": [{"input": bad, "output": "o"}]}, "test_set.0.input"),
        ({"task": "t", "test_set": [{"input": "i", "output": bad}]}, "test_set.0.output"),
        ({"task": "t", "teacher": bad}, "teacher"),
        ({"task": "t", "student": bad}, "student"),
        ({"task": "t", "training": {"distillation": "on_policy", "teacher_weights": bad}}, "training.teacher_weights"),
    ]


TEXT_CASES = [(body, field, kind) for kind, bad in (("NUL", NUL), ("surrogate", SURROGATE))
              for body, field in _text_bodies(bad)]


def post_json(client, body: dict[str, Any]) -> httpx.Response:
    # json.dumps writes both as the JSON escapes `\u0000` and `\ud800` (httpx's encoder cannot send the surrogate).
    return client.post("/api/jobs", content=json.dumps(body).encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("body,field,kind", TEXT_CASES, ids=[f"{kind}-{field}" for _, field, kind in TEXT_CASES])
def test_text_postgres_cannot_store_is_422_naming_the_field(client, body, field, kind):
    before = client.get("/api/jobs").json()["total"]
    response = post_json(client, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]] and kind in error["message"]
    after = client.get("/api/jobs")
    assert after.status_code == 200 and after.json()["total"] == before, "the next request works; no job was made"


def test_nul_in_query_and_path_strings_is_a_clear_4xx(client):
    job_id = make_trainable_job(sms_training_rows(n_train=4))
    answers = {
        f"/api/jobs/{job_id}/artifacts/a%00b": 400,
        f"/api/jobs/{job_id}/artifacts/%00": 400,
        f"/api/jobs/{job_id}/predictions?wrong=student%00": 422,
        f"/api/jobs/{job_id}/examples?split=train%00": 422,
        f"/api/jobs/{job_id}%00": 404,
        f"/api/jobs/{job_id}%00/events": 404,
        "/v1/models/a%00b": 404,
    }
    for url, status in answers.items():
        response = client.get(url)
        assert response.status_code == status, (url, response.text)
        assert response.json()["error"]["message"], url
    filtered = client.get(f"/api/jobs/{job_id}/examples?label=spam%00")
    assert filtered.status_code == 200 and filtered.json()["total"] == 0


# --- sizes: labels, the whole spec ---------------------------------------------------------------


def test_a_spec_over_max_spec_bytes_is_422_naming_the_limit(client, settings_env):
    settings_env(MAX_SPEC_BYTES="4096")
    rows = [{"input": f"message {i}: " + "x" * 200, "output": "o"} for i in range(30)]
    response = client.post("/api/jobs", json={"task": "t", "examples": rows})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["body"]
    assert "MAX_SPEC_BYTES" in error["message"] and "4096" in error["message"]
    assert client.post("/api/jobs", json={"task": "t", "examples": rows[:5]}).status_code == 201


# --- local model paths: only inside ALLOWED_MODEL_DIRS -----------------------------------------


def test_local_models_only_from_allowed_model_dirs(client, settings_env, tmp_path):
    allowed = tmp_path / "models"
    (allowed / "mine").mkdir(parents=True)
    (allowed / "escape").symlink_to("/etc")
    settings_env(ALLOWED_MODEL_DIRS=f"{tmp_path / 'elsewhere'},{allowed}")
    mine = str((allowed / "mine").resolve())

    student = client.post("/api/jobs", json={"task": "t", "student": str(allowed / "mine")})
    assert student.status_code == 201, student.text
    assert student.json()["spec"]["student"] == mine
    weights = client.post("/api/jobs", json={"task": "t", "training": {
        "distillation": "on_policy", "teacher_weights": str(allowed / "mine" / ".." / "mine")}})
    assert weights.status_code == 201, weights.text
    assert weights.json()["spec"]["training"]["teacher_weights"] == mine

    for path in ("/etc", str(allowed / "escape"), str(allowed / "mine" / ".." / ".."), "./models", "~", "../x"):
        for body, field in (({"task": "t", "student": path}, "student"), (
                {"task": "t", "training": {"distillation": "on_policy", "teacher_weights": path}},
                "training.teacher_weights")):
            response = client.post("/api/jobs", json=body)
            assert response.status_code == 422, (path, response.text)
            error = response.json()["error"]
            assert [f["field"] for f in error["fields"]] == [field] and "ALLOWED_MODEL_DIRS" in error["message"]

    for name in (get_settings().student_model, "HuggingFaceTB/SmolLM2-135M-Instruct"):
        response = client.post("/api/jobs", json={"task": "t", "student": name})
        assert response.status_code == 201 and response.json()["spec"]["student"] == name


def test_the_bundled_models_folder_is_allowed_by_default(client):
    from workers import bundled_models

    folder = str(bundled_models.model_dir(bundled_models.STUDENT))
    response = client.post("/api/jobs", json={"task": "t", "student": folder})
    assert response.status_code == 201, response.text


# --- the job list never loads the specs ----------------------------------------------------------


def test_the_job_list_never_selects_the_spec(client):
    make_job(examples=[{"input": "x" * 5000, "output": "y"}])
    from app.api.routes.events import jobs_snapshot
    from app.auth import LOCAL_ADMIN

    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert client.get("/api/jobs").json()["items"]
        assert jobs_snapshot(5, LOCAL_ADMIN)["items"]
        with session_scope() as session:
            rows, _ = jobs.newest_jobs(session, 5)
            assert rows and all("spec" in inspect(job).unloaded for job in rows)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    lists = [s for s in statements if "FROM jobs" in s and "ORDER BY" in s]
    assert len(lists) == 3, statements
    assert not any("jobs.spec" in s for s in lists), lists


# --- request bodies over MAX_REQUEST_BYTES, on a real server -----------------------------------

LIVE_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def live_api(test_database) -> Iterator[str]:
    """The API under uvicorn with MAX_REQUEST_BYTES=64 KiB."""
    logs = SCRATCH / "logs" / "bad-input"
    logs.mkdir(parents=True, exist_ok=True)
    service = LiveService(logs, workers=False, env={"MAX_REQUEST_BYTES": str(LIVE_LIMIT)})
    try:
        yield service.url
    finally:
        service.stop()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the answer was cut short"
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _assert_too_large(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and "MAX_REQUEST_BYTES" in error["message"]
    assert headers.get("connection") == "close"


REQUEST_HEAD = b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def test_an_announced_oversized_body_is_413_before_it_is_read(live_api):
    with _connect(live_api) as sock:
        started = time.monotonic()
        # 1 GB promised, 10 bytes sent: an answer at all means the server did not wait to read the body.
        sock.sendall(REQUEST_HEAD + b"Content-Length: 1000000000\r\n\r\n" + b'{"task": "')
        answer = _read_response(sock)
        elapsed = time.monotonic() - started
        _assert_too_large(*answer)
        assert elapsed < 3, f"the 413 took {elapsed:.1f} s"
        assert _closed_by_server(sock)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(live_api):
    with _connect(live_api) as sock:
        sock.sendall(REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 16384
        for _ in range(LIVE_LIMIT // len(chunk)):  # exactly the limit: still fine
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        time.sleep(0.3)
        sock.sendall(b"1\r\n \r\n")  # one byte over, and the body never ends
        _assert_too_large(*_read_response(sock))
        assert _closed_by_server(sock)


def test_a_chunked_body_under_the_limit_is_read_whole(live_api):
    body = json.dumps({"task": "t", "num_examples": 0}).encode() + b" " * (LIVE_LIMIT - 100)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    response = http.post(f"{live_api}/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "num_examples"


def test_refused_text_leaves_the_connection_usable(live_api):
    import http.client

    host, port = live_api.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.connect()
        sock = conn.sock
        for bad in (NUL, SURROGATE):
            conn.request("POST", "/api/jobs", body=json.dumps({"task": bad}).encode(),
                         headers={"Content-Type": "application/json", **ADMIN_HEADERS})
            refused = conn.getresponse()
            assert refused.status == 422 and json.loads(refused.read())["error"]["fields"][0]["field"] == "task"
            conn.request("GET", "/api/jobs?limit=1", headers=ADMIN_HEADERS)
            again = conn.getresponse()
            again.read()
            assert again.status == 200
            assert conn.sock is sock, "the server closed the keep-alive connection"
    finally:
        conn.close()


def test_an_idle_connection_outlives_a_clients_reuse_of_it(live_api):
    """httpx (the CLI, the openai client) reuses a connection idle for up to 5 s; the server keeps
    it longer, so a request sent on it never meets a connection the server is just closing."""
    import http.client

    client_expiry = httpx.Limits().keepalive_expiry or 0
    host, port = live_api.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for attempt in range(2):
            conn.request("GET", "/api/jobs?limit=1", headers=ADMIN_HEADERS)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200 and answer.getheader("connection") != "close"
            if attempt == 0:
                sock = conn.sock
                time.sleep(client_expiry + 1)
        assert conn.sock is sock, "the server closed the idle connection before the client let go of it"
    finally:
        conn.close()
