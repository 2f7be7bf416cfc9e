"""Starting and stopping real service processes (workers, servers) for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process in its own group, with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited ({self.proc.returncode}) before {what}:\n{self.output()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"no {what} within {timeout}s:\n{self.output()[-4000:]}")

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.proc.wait()
        finally:
            self._out.close()


def start_worker(queue: str, log: Path, concurrency: int = 2, module: str = "tests.support.stage_worker",
                 env: dict[str, str] | None = None) -> Process:
    """A real Celery worker for `queue`, returned once it consumes."""
    worker = Process([sys.executable, "-m", module, "--queue", queue, "--concurrency", str(concurrency)], log, env)
    worker.wait_for(lambda: " ready." in worker.output(), timeout=60, what=f"{queue} worker ready")
    return worker
