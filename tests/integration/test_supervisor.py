"""The supervisor `make up` runs, on its own database: a worker killed while it waits for /health
is started again, a stop asked for meanwhile is honoured, and AUTH=off is refused off loopback."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid

from tests.conftest import ADMIN_URL
from tests.support.database import drop_database
from tests.support.processes import Process, free_port


def test_a_killed_worker_is_started_again_and_sigterm_stops_everything(tmp_path):
    db, port = f"vibetune_sup_{uuid.uuid4().hex[:8]}", free_port()
    env = {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", "PORT": str(port),
           "QUEUE_PREFIX": f"sup-{db}-", "ARTIFACT_DIR": str(tmp_path / "a"), "WORK_DIR": str(tmp_path / "w"),
           "SERVE_TEACHER": "false", "TEACHER_URL": "http://127.0.0.1:9/v1"}  # no teacher: /health stays 503
    sup = Process([sys.executable, "-m", "app.cli.supervisor"], tmp_path / "sup.log", env=env)
    try:
        sup.wait_for(lambda: "waiting for" in sup.output() and "started worker" in sup.output(), timeout=90,
                     what="services started")
        (worker,) = re.findall(r"started worker \(pid (\d+)\)", sup.output())
        os.killpg(int(worker), signal.SIGKILL)  # as the kernel's OOM killer or a crash would
        sup.wait_for(lambda: len(re.findall(r"started worker \(pid (\d+)\)", sup.output())) == 2, timeout=30,
                     what="the worker started again")
        assert "worker exited (-9); starting it again in 1 s" in sup.output()
        time.sleep(2)
        os.kill(sup.proc.pid, signal.SIGTERM)  # the supervisor alone, as `kill PID` or a service manager does
        assert sup.proc.wait(timeout=30) == 0, sup.output()[-3000:]
        assert "vibetune stopped" in sup.output()
    finally:
        sup.stop()
        drop_database(ADMIN_URL, db)


def test_auth_off_is_refused_on_a_public_address():
    result = subprocess.run([sys.executable, "-m", "app.cli.supervisor", "--host", "0.0.0.0"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "AUTH": "off"})
    assert result.returncode == 2
    assert "refusing to start with AUTH=off on 0.0.0.0" in result.stderr
