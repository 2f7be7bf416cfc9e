"""Make sure the local Postgres and Redis answer, starting them if they are installed but down.

Run with any Python 3 (standard library only), before the virtual environment exists:
`python3 -m app.cli.local_services`. Exits non-zero with a clear message when a service cannot be had.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse


def listens(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _start_postgres(_port: int) -> None:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if versions and shutil.which("pg_ctlcluster"):
        print("starting PostgreSQL...", flush=True)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)


def _start_redis(port: int) -> None:
    if shutil.which("redis-server"):
        print("starting Redis...", flush=True)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
                        "--save", "", "--appendonly", "no"], check=False, stdout=subprocess.DEVNULL)


def _ensure(name: str, url: str, default_port: int, start) -> str | None:
    parsed = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    if listens(host, port):
        return None
    if host in ("127.0.0.1", "localhost"):
        start(port)
        for _ in range(40):
            if listens(host, port):
                return None
            time.sleep(0.5)
    return (f"{name} is not answering on {host}:{port} and could not be started here; "
            "install and start it, or point the URL setting at a running server.")


def main() -> int:
    problems = [
        _ensure("PostgreSQL", os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/vibetune"), 5432,
                _start_postgres),
        _ensure("Redis", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), 6379, _start_redis),
    ]
    for problem in filter(None, problems):
        print(problem, file=sys.stderr)
    return 1 if any(problems) else 0


if __name__ == "__main__":
    sys.exit(main())
