"""`make up`: prepare the database, then run the teacher, the API and the workers in the foreground.

Ctrl-C or SIGTERM stops every process it started. A process that dies is started again after a
back-off (1 s, doubling up to a minute; reset once it has run a minute), as compose's restart
policy does in production; a job a dead worker held is taken over when its lease runs out. A
process that dies within a minute of its start five times in a row is a broken setup (a port in
use, a missing model): then everything is stopped rather than left half running.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.config import get_settings


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    env: dict[str, str] | None = None


#: How long the API keeps an idle connection open. Longer than the 5 s for which httpx (the CLI,
#: the openai client) and most clients reuse one, and than a proxy's usual 60 s: were both 5 s, a
#: request sent on a connection the server is just closing would fail with a `ReadError` (seen
#: under load in bench/api_load.py). A client always lets go first.
KEEP_ALIVE_SECONDS = 75


def api_command(host: str, port: int, *extra: str) -> tuple[str, ...]:
    """The API server's command line, the one place that says how uvicorn runs it (`make up`, the
    tests' live service and the benchmarks; docker-compose.yml and the Dockerfile mirror it)."""
    # Live dashboards hold event streams open; without a bound, uvicorn would wait on them forever.
    return (sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port),
            "--timeout-graceful-shutdown", "3", "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS), *extra)


def services(host: str, port: int) -> list[Service]:
    """The long-running processes of one vibetune machine (docker-compose.yml mirrors these)."""
    py = sys.executable
    return [
        Service("api", api_command(host, port)),
        Service("worker", (py, "-m", "workers.main", "--queue", "default")),
        Service("gpu-worker", (py, "-m", "workers.main", "--queue", "gpu", "--concurrency", "1")),
    ]


def teacher_service() -> Service:
    """The bundled vLLM teacher server, at the port of TEACHER_URL."""
    from workers import teacher_server

    settings = get_settings()
    args = teacher_server.serve_command(settings.teacher_url, settings.teacher_model, settings.teacher_model_path)
    return Service("teacher", tuple(args), teacher_server.server_env())


def ensure_database(url: str) -> None:
    """Create the database named in `url` if the server lacks it."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{target.database}"')
            print(f"created database {target.database}", flush=True)


def first_admin_key() -> str | None:
    """Store VIBETUNE_ADMIN_KEY, or make a random admin key on a database that has none; the key
    if one was made now (None with AUTH=off or when an admin key exists already)."""
    from app.auth import ensure_admin_key
    from app.db import session_scope

    settings = get_settings()
    if not settings.auth:
        return None
    with session_scope() as session:
        return ensure_admin_key(session, settings.vibetune_admin_key)


def sign_in_text(key: str) -> str:
    """What to tell a person about a first admin key, printed once."""
    return (f"\nFirst admin key (shown once, only its hash is stored):\n\n    {key}\n\n"
            "Sign in to the dashboard with it, or `export VIBETUNE_API_KEY=...` for the CLI; "
            "make keys for other people with `vibetune keys create --owner NAME`.\n")


def refuse_open_auth_off(host: str) -> str | None:
    """Why the service must not start with AUTH=off on `host`, or None if it may."""
    from app.auth import is_loopback

    if get_settings().auth or is_loopback(host):
        return None
    return (f"refusing to start with AUTH=off on {host}: anyone who can reach it could read and delete every job. "
            "Bind to 127.0.0.1 (HOST=127.0.0.1) or turn AUTH on.")


def migrate() -> None:
    """Bring the schema to the newest revision (alembic.ini of this checkout, else of the cwd)."""
    ini = Path(__file__).resolve().parents[2] / "alembic.ini"
    config = ["-c", str(ini)] if ini.is_file() else []
    subprocess.run([sys.executable, "-m", "alembic", *config, "upgrade", "head"], check=True)


@dataclass
class Backoff:
    """When to start a dead process again: after `first` seconds, doubling to at most `most`;
    back to `first` once a run lasted `stable` seconds. `None` (give up) after `attempts` runs in
    a row that each died sooner than that."""

    first: float = 1.0
    most: float = 60.0
    stable: float = 60.0
    attempts: int = 5
    failures: int = 0

    def after_exit(self, ran: float) -> float | None:
        """The delay before the next start of a process that ran `ran` seconds, or None."""
        self.failures = 1 if ran >= self.stable else self.failures + 1
        if ran < self.stable and self.failures >= self.attempts:
            return None
        return min(self.most, self.first * 2 ** (self.failures - 1))


class Supervisor:
    """Starts services in their own process groups, starts a dead one again after its back-off,
    and stops them all together."""

    def __init__(self, specs: list[Service], backoff: Callable[[], Backoff] = Backoff) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.backoffs = {name: backoff() for name in self.specs}
        self.restart_at: dict[str, float] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.specs, 0)
        self.stopping = False

    def _start(self, name: str) -> None:
        spec = self.specs[name]
        self.procs[name] = subprocess.Popen(spec.args, env=spec.env, start_new_session=True)
        self.started[name] = time.monotonic()
        print(f"started {name} (pid {self.procs[name].pid})", flush=True)

    def start(self) -> None:
        for name in self.specs:
            self._start(name)

    def tend(self) -> str | None:
        """Start again the processes whose back-off is over, schedule the ones that died since the
        last call; the name of one that keeps dying (give up), else None."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            if name in self.restart_at:
                if now >= self.restart_at[name]:
                    del self.restart_at[name]
                    self.restarts[name] += 1
                    self._start(name)
                continue
            if proc.poll() is None:
                continue
            _signal_group(proc, signal.SIGKILL)  # pool children a dead parent left behind
            delay = self.backoffs[name].after_exit(now - self.started[name])
            if delay is None:
                return name
            print(f"{name} exited ({proc.returncode}); starting it again in {delay:.0f} s", file=sys.stderr,
                  flush=True)
            self.restart_at[name] = now + delay
        return None

    def stop(self, grace: float = 15.0) -> None:
        self.stopping = True
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for proc in self.procs.values():  # pool children left behind by a killed parent
            _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_healthy(url: str, sup: Supervisor, timeout: float = 900.0,
                 stopping: Callable[[], bool] = lambda: False) -> bool:
    """Poll /health until it answers ok, a service keeps dying, a stop is asked for, or time runs
    out (tending the services meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        if sup.tend() is not None:
            return False
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run vibetune (API and workers) in the foreground.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)

    if problem := refuse_open_auth_off(args.host):
        print(f"vibetune: {problem}", file=sys.stderr, flush=True)
        return 2
    ensure_database(get_settings().database_url)
    migrate()
    if key := first_admin_key():
        print(sign_in_text(key), flush=True)
    specs = services(args.host, args.port)
    if get_settings().serve_teacher:
        specs.insert(0, teacher_service())
    sup = Supervisor(specs)
    stop_requested = False

    def _request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    sup.start()
    url = f"http://{args.host}:{args.port}"
    print(f"waiting for {url}/health (the CPU teacher takes a few minutes to start)...", flush=True)
    if wait_healthy(url, sup, stopping=lambda: stop_requested):
        print(f"\nvibetune is up: dashboard {url}/  API docs {url}/docs  (Ctrl-C stops it)\n", flush=True)
    while not stop_requested and (broken := sup.tend()) is None:
        time.sleep(0.5)
    if not stop_requested:
        print(f"{broken} keeps exiting right after it starts; stopping everything", file=sys.stderr, flush=True)
    sup.stop()
    print("vibetune stopped", flush=True)
    return 0 if stop_requested else 1


if __name__ == "__main__":
    sys.exit(main())
