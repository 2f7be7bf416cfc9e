"""`make up` for real: its own database, the API, both workers; then SIGTERM stops it all."""

import os
import re
import signal
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import ADMIN_URL
from tests.support.database import drop_database
from tests.support.processes import Process, free_port
from tests.support.teacher import SERVED_NAME


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def service(tmp_path, teacher_url):
    db = f"vibetune_up_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        "QUEUE_PREFIX": f"up-{uuid.uuid4().hex[:6]}-",
        "ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "WORK_DIR": str(tmp_path / "work"),
        "PORT": str(port),
        # The test run's teacher is already up; make up would otherwise start its own.
        "SERVE_TEACHER": "false",
        "TEACHER_URL": teacher_url,
        "MAKEFLAGS": "",
    }
    proc = Process(["make", "--no-print-directory", "up"], tmp_path / "up.log", env=env)
    try:
        proc.wait_for(lambda: "vibetune is up" in proc.output(), timeout=120, what="'vibetune is up'")
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
        drop_database(ADMIN_URL, db)


def test_make_up_serves_and_runs_jobs_then_stops_cleanly(service):
    proc, url = service
    assert f"dashboard {url}/" in proc.output()
    # A fresh database: `make up` printed a first admin key, once, and it works.
    keys = re.findall(r"^\s+(vt_[A-Za-z0-9_-]{43})$", proc.output(), flags=re.M)
    assert len(keys) == 1, proc.output()[-3000:]
    signed = httpx.Client(headers={"Authorization": f"Bearer {keys[0]}"})
    assert httpx.get(f"{url}/api/jobs").status_code == 401
    assert signed.get(f"{url}/api/me").json() == {"owner": "admin", "admin": True, "auth": True}
    health = httpx.get(f"{url}/health").json()
    assert health == {**health, "status": "ok", "database": "ok", "broker": "ok", "teacher": "ok"}
    assert httpx.get(f"{url}/").status_code == 200
    # TEACHER_MODEL names the test teacher here; unset, it is the bundled 1.5B one (tests/unit).
    assert signed.get(f"{url}/api/models").json()["teachers"][0] == SERVED_NAME

    job = signed.post(f"{url}/api/jobs", json={"task": "Is this SMS spam?", "labels": ["spam", "ham"]}).json()
    deadline = time.monotonic() + 30
    # A claimed job is `running` a moment before its first stage is recorded as started.
    while (current := signed.get(f"{url}/api/jobs/{job['id']}").json())["stage"] is None:
        assert current["status"] in ("queued", "running"), current
        assert time.monotonic() < deadline, "no worker picked the job up"
        time.sleep(0.2)
    assert current["status"] == "running" and current["stage"] == "plan", current
    canceled = signed.post(f"{url}/api/jobs/{job['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    deadline = time.monotonic() + 60
    while signed.get(f"{url}/api/jobs/{job['id']}").json()["stages"][0]["status"] == "running":
        assert time.monotonic() < deadline, "the plan stage did not stop after cancel"
        time.sleep(0.5)

    pids = [int(p) for p in re.findall(r"started [\w-]+ \(pid (\d+)\)", proc.output())]
    assert len(pids) == 3
    dashboard = open_event_stream(f"{url}/api/events/jobs", keys[0])  # an open dashboard must not hold the API up
    proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), proc.output()[-3000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")
    dashboard.join(10)
    assert not dashboard.is_alive(), "the event stream stayed open after the API stopped"


def open_event_stream(url: str, key: str) -> threading.Thread:
    """Read a Server-Sent Events stream in the background until the server ends it."""
    opened = threading.Event()

    def read() -> None:
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=None),
                              headers={"Authorization": f"Bearer {key}"}) as response:
                for _ in response.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert opened.wait(10), "the event stream did not start"
    return thread
