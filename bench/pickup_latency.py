"""How fast the foundation moves a job: API submit latency and queue pickup latency.

Starts the real service (`python -m app.cli.supervisor`) on a throwaway database, submits jobs one
after another, and reports submit time (POST /api/jobs) and pickup time (created_at -> started_at,
i.e. the commit, the enqueue, Redis and a worker claiming it). Run with `make bench`.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime

import httpx
import psycopg

JOBS = int(os.environ.get("BENCH_JOBS", "30"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    db, port, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", _free_port(), tempfile.mkdtemp()
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
           "QUEUE_PREFIX": f"bench-{db}-", "ARTIFACT_DIR": f"{scratch}/a", "WORK_DIR": f"{scratch}/w"}
    server = subprocess.Popen([sys.executable, "-m", "app.cli.supervisor", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(240):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            submit, pickup = [], []
            for i in range(JOBS):
                t0 = time.perf_counter()
                job = client.post("/api/jobs", json={"task": f"bench job {i}", "until": "data"}).json()
                submit.append(time.perf_counter() - t0)
                while (cur := client.get(f"/api/jobs/{job['id']}").json())["started_at"] is None:
                    time.sleep(0.005)
                started = datetime.fromisoformat(cur["started_at"])
                pickup.append((started - datetime.fromisoformat(cur["created_at"])).total_seconds())
        print(f"jobs: {JOBS}")
        print(f"submit  p50 {statistics.median(submit) * 1000:7.1f} ms   p95 {_pct(submit, 0.95) * 1000:7.1f} ms")
        print(f"pickup  p50 {statistics.median(pickup) * 1000:7.1f} ms   p95 {_pct(pickup, 0.95) * 1000:7.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
