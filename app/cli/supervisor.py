"""`make up`: prepare the database, then run the teacher, the API and the workers in the foreground.

Ctrl-C or SIGTERM stops every process it started. If one of them dies, the rest are stopped too,
so a broken setup is never left half running.
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


class Supervisor:
    """Starts services in their own process groups and stops them all together."""

    def __init__(self, specs: list[Service]) -> None:
        self.specs = specs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self) -> None:
        for spec in self.specs:
            self.procs[spec.name] = subprocess.Popen(spec.args, env=spec.env, start_new_session=True)
            print(f"started {spec.name} (pid {self.procs[spec.name].pid})", flush=True)

    def first_exited(self) -> str | None:
        return next((name for name, p in self.procs.items() if p.poll() is not None), None)

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
    """Poll /health until it answers ok, a service dies, a stop is asked for, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sup.first_exited() is None and not stopping():
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
    while not stop_requested and (dead := sup.first_exited()) is None:
        time.sleep(0.5)
    if not stop_requested:
        print(f"{dead} exited; stopping everything", file=sys.stderr, flush=True)
    sup.stop()
    print("vibetune stopped", flush=True)
    return 0 if stop_requested else 1


if __name__ == "__main__":
    sys.exit(main())
