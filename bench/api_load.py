"""The API under load: many concurrent clients mixing what people and dashboards do.

Starts the real API (uvicorn, one process, as `make up` runs it; no workers, so submitted jobs stay
queued) on a throwaway database, seeds some jobs, then runs CLIENTS concurrent clients for
SECONDS seconds, each looping over a weighted mix: list jobs, get a job, its report, open its
event stream and read the first event, submit a job, cancel one. Prints p50/p99 per route, the
count of 5xx answers (0 is the target; /health's documented 503 while no teacher runs is counted
apart), and the API process's peak RSS; writes everything to bench/results/api_load.json.

    .venv/bin/python bench/api_load.py [--clients 500] [--seconds 60]

Loopback only; the run is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "api_load.json"
MIX = (("list", 30), ("get", 25), ("report", 15), ("events", 5), ("submit", 15), ("cancel", 10))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Load:
    """The shared state of one run: job ids to act on, and every answer's route, status and time."""

    def __init__(self, client: httpx.AsyncClient, job_ids: list[str], deadline: float) -> None:
        self.client, self.job_ids, self.deadline = client, job_ids, deadline
        self.times: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.errors: Counter[str] = Counter()

    async def call(self, route: str, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.errors[f"{route}: {type(exc).__name__}"] += 1
            return None
        self.times[route].append(time.perf_counter() - start)
        self.statuses[route][response.status_code] += 1
        return response

    async def events(self) -> None:
        start = time.perf_counter()
        try:
            async with self.client.stream("GET", f"/api/jobs/{random.choice(self.job_ids)}/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        break
        except httpx.HTTPError as exc:
            self.errors[f"events: {type(exc).__name__}"] += 1
            return
        self.times["events"].append(time.perf_counter() - start)
        self.statuses["events"][response.status_code] += 1

    async def one(self, op: str) -> None:
        job = random.choice(self.job_ids)
        if op == "list":
            await self.call("list", "GET", "/api/jobs", params={"limit": 50})
        elif op == "get":
            await self.call("get", "GET", f"/api/jobs/{job}")
        elif op == "report":
            await self.call("report", "GET", f"/api/jobs/{job}/report")
        elif op == "events":
            await self.events()
        elif op == "submit":
            response = await self.call("submit", "POST", "/api/jobs",
                                       json={"task": f"load test {uuid.uuid4().hex[:6]}", "until": "data"})
            if response is not None and response.status_code == 201:
                self.job_ids.append(response.json()["id"])
        elif op == "cancel":
            await self.call("cancel", "POST", f"/api/jobs/{job}/cancel")

    async def client_loop(self) -> None:
        ops, weights = zip(*MIX, strict=True)
        while time.monotonic() < self.deadline:
            await self.one(random.choices(ops, weights)[0])

    async def health_loop(self) -> None:
        while time.monotonic() < self.deadline:
            await self.call("health", "GET", "/health")
            await asyncio.sleep(0.5)


async def drive(url: str, clients: int, seconds: float, job_ids: list[str]) -> Load:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        load = Load(client, job_ids, time.monotonic() + seconds)
        await asyncio.gather(load.health_loop(), *(load.client_loop() for _ in range(clients)))
    return load


def wait_up(url: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/api/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the API at {url} did not answer within {timeout:.0f} s")


def report(load: Load, clients: int, seconds: float, rss: float | None) -> dict[str, object]:
    routes = {}
    for route in sorted(load.times):
        statuses = load.statuses[route]
        server_errors = sum(n for code, n in statuses.items() if code >= 500)
        if route == "health":
            server_errors -= statuses.get(503, 0)  # degraded (no teacher runs here): documented, counted apart
        routes[route] = {"n": len(load.times[route]), "p50_ms": percentile(load.times[route], 0.5),
                         "p99_ms": percentile(load.times[route], 0.99), "statuses": dict(statuses),
                         "server_errors": server_errors}
    total = sum(r["n"] for r in routes.values())  # type: ignore[misc]
    return {"clients": clients, "seconds": seconds, "requests": total,
            "requests_per_second": round(total / seconds, 1),
            "server_errors": sum(r["server_errors"] for r in routes.values()),  # type: ignore[misc]
            "client_errors": dict(load.errors), "peak_rss_mb": rss, "routes": routes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    db, port, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", free_port(), tempfile.mkdtemp()
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
           "QUEUE_PREFIX": f"bench-{db}-", "ARTIFACT_DIR": f"{scratch}/a", "WORK_DIR": f"{scratch}/w",
           "TEACHER_URL": "http://127.0.0.1:9/v1"}
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    subprocess.run([sys.executable, "-m", "app.cli.main", "migrate"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    # The command `make up` runs (app/cli/supervisor.py).
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port",
                               str(port), "--timeout-graceful-shutdown", "3", "--log-level", "warning"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(url)
        job_ids = [httpx.post(f"{url}/api/jobs", json={"task": f"seed job {i}", "until": "data"}).json()["id"]
                   for i in range(20)]
        load = asyncio.run(drive(url, args.clients, args.seconds, job_ids))
        result = report(load, args.clients, args.seconds, peak_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.clients} clients for {args.seconds:.0f} s: {result['requests']} requests "
          f"({result['requests_per_second']}/s), 5xx: {result['server_errors']}, "
          f"client errors: {result['client_errors'] or 0}, API peak RSS {result['peak_rss_mb']} MB")
    print(f"{'route':<8} {'n':>7} {'p50 ms':>9} {'p99 ms':>9}  statuses")
    for route, r in result["routes"].items():  # type: ignore[attr-defined]
        print(f"{route:<8} {r['n']:>7} {r['p50_ms']:>9} {r['p99_ms']:>9}  {r['statuses']}")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
