"""The API under load: many concurrent clients mixing what people and dashboards do, as several owners.

Starts the real API (uvicorn, one process, as `make up` runs it; no workers, so submitted jobs stay
queued) on a throwaway database with a random admin key (VIBETUNE_ADMIN_KEY, stored by `migrate`),
makes OWNERS owner keys with it (POST /api/keys) and seeds jobs for each owner. Then it runs
CLIENTS concurrent clients for SECONDS seconds, client i signing every request with the key of
owner i % OWNERS (so every request pays the per-request key check), each looping over a weighted
mix: list jobs, get a job, its report, open its event stream and read the first event, submit a
job, cancel one. Prints p50/p99 per route, the count of 5xx answers (0 is the target; /health's
documented 503 while no teacher runs is counted apart), the 429s and any other unexpected 4xx,
and the API process's peak RSS; writes everything to bench/results/api_load.json (or `--out`).

The per-owner limit on active jobs (MAX_ACTIVE_JOBS_PER_OWNER) is kept at its default, 5, and
pinned in the service's environment so runs compare: a bench that raised it would measure a
service nobody runs. Submitting is then bounded by cancelling: a client's cancel first cancels
a job its owner submitted and has not cancelled yet (else a random job of the owner, often
already cancelled: 409), and a submit beyond the limit answers 429 `too_many_active_jobs`. Those
429s are expected; they are counted in the submit route's statuses and apart as `submit_429`,
never as errors. Any other 4xx (a 401 or 403 would mean a key went wrong) is `unexpected_4xx`.

    .venv/bin/python bench/api_load.py [--clients 500] [--seconds 60] [--out bench/results/api_load.json]

Loopback only; the run is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli.supervisor import api_command  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api_load.json"
MIX = (("list", 30), ("get", 25), ("report", 15), ("events", 5), ("submit", 15), ("cancel", 10))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
OWNERS = 10
SEED_JOBS_PER_OWNER = 2
#: The service's default MAX_ACTIVE_JOBS_PER_OWNER, pinned (see the docstring).
MAX_ACTIVE_JOBS_PER_OWNER = 5
#: 4xx answers the mix provokes on purpose: cancelling a finished job, submitting beyond the limit.
EXPECTED_4XX = {"cancel": {409}, "submit": {429}}


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


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Owner:
    """One owner's key, the jobs it may act on, and those it submitted and has not cancelled yet."""

    def __init__(self, name: str, key: str, job_ids: list[str]) -> None:
        self.name, self.headers, self.job_ids = name, bearer(key), job_ids
        self.pending: deque[str] = deque()


class Load:
    """The shared state of one run: the owners, and every answer's route, status and time."""

    def __init__(self, client: httpx.AsyncClient, owners: list[Owner], deadline: float) -> None:
        self.client, self.owners, self.deadline = client, owners, deadline
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

    async def events(self, owner: Owner) -> None:
        start = time.perf_counter()
        try:
            async with self.client.stream("GET", f"/api/jobs/{random.choice(owner.job_ids)}/events",
                                          headers=owner.headers) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        break
        except httpx.HTTPError as exc:
            self.errors[f"events: {type(exc).__name__}"] += 1
            return
        self.times["events"].append(time.perf_counter() - start)
        self.statuses["events"][response.status_code] += 1

    async def one(self, owner: Owner, op: str) -> None:
        job, headers = random.choice(owner.job_ids), owner.headers
        if op == "list":
            await self.call("list", "GET", "/api/jobs", params={"limit": 50}, headers=headers)
        elif op == "get":
            await self.call("get", "GET", f"/api/jobs/{job}", headers=headers)
        elif op == "report":
            await self.call("report", "GET", f"/api/jobs/{job}/report", headers=headers)
        elif op == "events":
            await self.events(owner)
        elif op == "submit":
            response = await self.call("submit", "POST", "/api/jobs", headers=headers,
                                       json={"task": f"load test {uuid.uuid4().hex[:6]}", "until": "data"})
            if response is not None and response.status_code == 201:
                owner.job_ids.append(response.json()["id"])
                owner.pending.append(response.json()["id"])
        elif op == "cancel":
            target = owner.pending.popleft() if owner.pending else job  # what this owner submitted first
            await self.call("cancel", "POST", f"/api/jobs/{target}/cancel", headers=headers)

    async def client_loop(self, owner: Owner) -> None:
        ops, weights = zip(*MIX, strict=True)
        while time.monotonic() < self.deadline:
            await self.one(owner, random.choices(ops, weights)[0])

    async def health_loop(self) -> None:
        while time.monotonic() < self.deadline:
            await self.call("health", "GET", "/health")
            await asyncio.sleep(0.5)


async def drive(url: str, clients: int, seconds: float, owners: list[Owner]) -> Load:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        load = Load(client, owners, time.monotonic() + seconds)
        await asyncio.gather(load.health_loop(), *(load.client_loop(owners[i % len(owners)]) for i in range(clients)))
    return load


def wait_up(url: str, admin_key: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status = httpx.get(f"{url}/api/models", headers=bearer(admin_key), timeout=2).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            return
        if status in (401, 403):
            raise SystemExit(f"the API at {url} refused the bench's admin key ({status}): was it stored by migrate?")
        time.sleep(0.3)
    raise SystemExit(f"the API at {url} did not answer within {timeout:.0f} s")


def make_owners(url: str, admin_key: str) -> list[Owner]:
    """OWNERS owner keys made with the admin key, each with SEED_JOBS_PER_OWNER jobs of its own."""
    owners = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(OWNERS):
            name = f"bench-owner-{i}"
            made = client.post("/api/keys", json={"owner": name, "name": "bench/api_load.py"},
                               headers=bearer(admin_key))
            made.raise_for_status()
            key = made.json()["key"]
            job_ids = []
            for j in range(SEED_JOBS_PER_OWNER):
                seeded = client.post("/api/jobs", json={"task": f"seed job {i}.{j}", "until": "data"},
                                     headers=bearer(key))
                seeded.raise_for_status()
                job_ids.append(seeded.json()["id"])
            owners.append(Owner(name, key, job_ids))
    return owners


def report(load: Load, clients: int, seconds: float, rss: float | None) -> dict[str, object]:
    routes = {}
    for route in sorted(load.times):
        statuses = load.statuses[route]
        server_errors = sum(n for code, n in statuses.items() if code >= 500)
        if route == "health":
            server_errors -= statuses.get(503, 0)  # degraded (no teacher runs here): documented, counted apart
        unexpected = sum(n for code, n in statuses.items()
                         if 400 <= code < 500 and code not in EXPECTED_4XX.get(route, set()))
        routes[route] = {"n": len(load.times[route]), "p50_ms": percentile(load.times[route], 0.5),
                         "p99_ms": percentile(load.times[route], 0.99), "statuses": dict(statuses),
                         "server_errors": server_errors, "unexpected_4xx": unexpected}
    total = sum(r["n"] for r in routes.values())  # type: ignore[misc]
    return {"clients": clients, "seconds": seconds, "owners": OWNERS,
            "max_active_jobs_per_owner": MAX_ACTIVE_JOBS_PER_OWNER, "requests": total,
            "requests_per_second": round(total / seconds, 1),
            "server_errors": sum(r["server_errors"] for r in routes.values()),  # type: ignore[misc]
            "submit_429": load.statuses["submit"].get(429, 0),
            "unexpected_4xx": sum(r["unexpected_4xx"] for r in routes.values()),  # type: ignore[misc]
            "client_errors": dict(load.errors), "peak_rss_mb": rss, "routes": routes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (JSON)")
    args = parser.parse_args()

    db, port, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", free_port(), tempfile.mkdtemp()
    admin_key = "vt_bench_" + secrets.token_urlsafe(24)
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
           "QUEUE_PREFIX": f"bench-{db}-", "ARTIFACT_DIR": f"{scratch}/a", "WORK_DIR": f"{scratch}/w",
           "TEACHER_URL": "http://127.0.0.1:9/v1", "AUTH": "true", "VIBETUNE_ADMIN_KEY": admin_key,
           "MAX_ACTIVE_JOBS_PER_OWNER": str(MAX_ACTIVE_JOBS_PER_OWNER)}
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = f"http://127.0.0.1:{port}"
    server = None
    try:
        # Stores VIBETUNE_ADMIN_KEY as an admin key (app/cli/supervisor.py `first_admin_key`).
        subprocess.run([sys.executable, "-m", "app.cli.main", "migrate"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        # The command `make up` runs (app/cli/supervisor.py).
        server = subprocess.Popen(api_command("127.0.0.1", port, "--log-level", "warning"),
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(url, admin_key)
        owners = make_owners(url, admin_key)
        load = asyncio.run(drive(url, args.clients, args.seconds, owners))
        result = report(load, args.clients, args.seconds, peak_rss_mb(server.pid))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.clients} clients as {OWNERS} owners for {args.seconds:.0f} s: {result['requests']} requests "
          f"({result['requests_per_second']}/s), 5xx: {result['server_errors']}, "
          f"client errors: {result['client_errors'] or 0}, API peak RSS {result['peak_rss_mb']} MB")
    print(f"submit 429 (over {MAX_ACTIVE_JOBS_PER_OWNER} active jobs per owner, expected): {result['submit_429']}, "
          f"unexpected 4xx: {result['unexpected_4xx']}")
    print(f"{'route':<8} {'n':>7} {'p50 ms':>9} {'p99 ms':>9}  statuses")
    for route, r in result["routes"].items():  # type: ignore[attr-defined]
        print(f"{route:<8} {r['n']:>7} {r['p50_ms']:>9} {r['p99_ms']:>9}  {r['statuses']}")
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
