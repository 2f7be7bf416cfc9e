"""How fast the foundation moves a job: API submit latency and queue pickup latency.

Starts the real service (`python -m app.cli.supervisor`) on a throwaway database, submits jobs one
after another, and reports submit time (POST /api/jobs) and pickup time (created_at -> started_at,
i.e. the commit, the enqueue, Redis and a worker claiming it). Run with `make bench`.

The service gets a random admin key (VIBETUNE_ADMIN_KEY, stored by the supervisor on start) and
every request is signed with it. Each job is cancelled once its pickup is measured, and the next
is submitted once the worker has stopped it: the owner stays under MAX_ACTIVE_JOBS_PER_OWNER (a
submit beyond it answers 429) and every job finds a free worker slot, so pickup is the queue's
latency alone.
"""

from __future__ import annotations

import os
import secrets
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


def stop(client: httpx.Client, job_id: str, timeout: float = 30.0) -> None:
    """Cancel a job (409: it has finished already) and wait until no stage of it runs."""
    response = client.post(f"/api/jobs/{job_id}/cancel")
    if response.status_code != 409:
        response.raise_for_status()
    deadline = time.monotonic() + timeout
    while any(s["status"] == "running" for s in client.get(f"/api/jobs/{job_id}").json()["stages"]):
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} was still running {timeout:.0f} s after its cancel")
        time.sleep(0.05)


def main() -> None:
    db, port, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", _free_port(), tempfile.mkdtemp()
    admin_key = "vt_bench_" + secrets.token_urlsafe(24)
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
           "QUEUE_PREFIX": f"bench-{db}-", "ARTIFACT_DIR": f"{scratch}/a", "WORK_DIR": f"{scratch}/w",
           "AUTH": "true", "VIBETUNE_ADMIN_KEY": admin_key}
    server = subprocess.Popen([sys.executable, "-m", "app.cli.supervisor", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as client:
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
                response = client.post("/api/jobs", json={"task": f"bench job {i}", "until": "data"})
                submit.append(time.perf_counter() - t0)
                response.raise_for_status()
                job = response.json()
                while (cur := client.get(f"/api/jobs/{job['id']}").json())["started_at"] is None:
                    time.sleep(0.005)
                started = datetime.fromisoformat(cur["started_at"])
                pickup.append((started - datetime.fromisoformat(cur["created_at"])).total_seconds())
                stop(client, job["id"])
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
