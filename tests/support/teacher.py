"""The real teacher for tests: one vLLM server per test run, started in the background as soon as
collection shows a test needs it, so its start overlaps the tests that do not.

It serves the small bundled model (SmolLM2-135M, `TEST_TEACHER_MODEL` picks another bundled one):
tests check what the service does with a real teacher's answers (guided choices, JSON, tool
calls, streaming, faults), not how good those answers are, which `bench/` measures with the
1.5B default teacher. On a 2-core CPU without AVX-512 the 1.5B model runs in float32 at about
35 prompt tokens/s and 12 GB; serving it made the suite take two hours there.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.support.processes import Process, free_port
from workers.bundled_models import BUNDLED, STUDENT, is_prepared, model_dir
from workers.teacher_server import TEACHER_PYTHON, server_command, server_env

TEST_TEACHER = BUNDLED[os.environ.get("TEST_TEACHER_MODEL", STUDENT.name)]
SERVED_NAME = TEST_TEACHER.name
START_TIMEOUT = 1200


class TeacherServer:
    """A vLLM server on a free port, or an already running one named by TEST_TEACHER_URL."""

    def __init__(self, log: Path) -> None:
        self.process: Process | None = None
        external = os.environ.get("TEST_TEACHER_URL")
        if external:
            self.url = external.rstrip("/")
            return
        if not (TEACHER_PYTHON.exists() and is_prepared(TEST_TEACHER)):
            raise RuntimeError("the bundled teacher is not prepared: run `make models` (make test does)")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        self.process = Process(server_command(model_dir(TEST_TEACHER), SERVED_NAME, port), log, env=server_env())

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self) -> str:
        if self.process is None:
            if not self.ready():
                raise RuntimeError(f"TEST_TEACHER_URL {self.url} does not answer")
            return self.url
        self.process.wait_for(self.ready, timeout=START_TIMEOUT, what="vLLM teacher ready")
        return self.url

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
