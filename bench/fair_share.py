"""A fair share of the teacher and the workers: how much one owner's big job slows another
owner's small one.

Starts the real API and a real default worker (DEFAULT_WORKER_SLOTS=2, as `make up` runs them)
on a throwaway database, with two owners' keys (POST /api/keys), against one teacher. Then runs,
one after another, data jobs (`until: "data"`) of the same SMS spam task:

  0. a warm-up job of A's size, not measured: every later run finds the teacher's prefix cache
     equally warm (the plan is greedy, so the same task gets the same prompts),
  1. owner A's big job alone (BIG examples),
  2. owner B's small job alone (SMALL examples),
  3. A's big job, and B's small one submitted once A is generating (its bulk requests in flight),
  4. the same as 3 with TEACHER_PRIORITY=false (every request at the same priority: the teacher
     serves them first come, first served), to show what the priorities buy;
  3 and 4 alternate, REPEATS times each.

Prints each stage's seconds for B (and A) together (the median of the repeats) against alone,
checks every job succeeded, and writes every run to bench/results/fair_share.json (or `--out`).

    TEACHER_URL=http://127.0.0.1:8011/v1 .venv/bin/python bench/fair_share.py [--big 60] [--small 12]

Without TEACHER_URL it starts the bundled vLLM teacher itself (a few minutes on a CPU); the
teacher must run with `--scheduling-policy priority` (workers/teacher_server.py does).
"""

from __future__ import annotations

import argparse
import json
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
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli.supervisor import api_command  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "fair_share.json"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TASK = "Decide whether an SMS text message is spam or a normal personal message"
JOB_TIMEOUT = 3600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """The API and a default worker on one database; the worker is restarted with other settings."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self._start("api", list(api_command("127.0.0.1", self.port, "--log-level", "warning")))
        self.worker: subprocess.Popen[bytes] | None = None

    def _start(self, name: str, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(args, cwd=ROOT, env={**self.env, **extra}, stdout=log, stderr=subprocess.STDOUT)

    def restart_worker(self, **extra: str) -> None:
        """A fresh default worker (as `make up` starts it) with `extra` settings, once it consumes."""
        self.stop_worker()
        log = self.logs / "worker.log"
        before = log.read_text(errors="replace").count(" ready.") if log.exists() else 0
        self.worker = self._start("worker", [sys.executable, "-m", "workers.main", "--queue", "default"], **extra)
        for _ in range(300):
            if log.read_text(errors="replace").count(" ready.") > before:
                return
            time.sleep(0.2)
        raise SystemExit(f"the default worker did not start; see {log}")

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(timeout=60)
            self.worker = None

    def stop(self) -> None:
        self.stop_worker()
        self.api.terminate()
        self.api.wait(timeout=30)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_up(url: str, admin_key: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/models", headers=bearer(admin_key), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API at {url} did not answer")


def owner_key(url: str, admin_key: str, owner: str) -> str:
    made = httpx.post(f"{url}/api/keys", json={"owner": owner, "name": "bench/fair_share.py"},
                      headers=bearer(admin_key), timeout=30)
    made.raise_for_status()
    return str(made.json()["key"])


def submit(url: str, key: str, examples: int) -> str:
    body = {"task": TASK, "labels": ["spam", "ham"], "num_examples": examples, "until": "data"}
    made = httpx.post(f"{url}/api/jobs", json=body, headers=bearer(key), timeout=30)
    made.raise_for_status()
    return str(made.json()["id"])


def get(url: str, key: str, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/jobs/{job_id}", headers=bearer(key), timeout=30)
    answer.raise_for_status()
    return dict(answer.json())


def wait_finished(url: str, jobs: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Poll the jobs (name -> (key, id)) until all have finished; their last states."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        states = {name: get(url, key, job_id) for name, (key, job_id) in jobs.items()}
        if all(s["status"] in ("succeeded", "failed", "canceled") for s in states.values()):
            return states
        time.sleep(2)
    raise SystemExit(f"jobs did not finish within {JOB_TIMEOUT} s")


def wait_for_stage(url: str, key: str, job_id: str, stage: str) -> None:
    while get(url, key, job_id)["stage"] != stage:
        time.sleep(1)


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """A job's status, its wait for a worker, each stage's seconds and the total."""
    def seconds(start: str | None, end: str | None) -> float | None:
        if not start or not end:
            return None
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)

    stages = {s["name"]: seconds(s["started_at"], s["finished_at"]) for s in job["stages"]}
    return {"status": job["status"], "error": job["error"], "waited_s": seconds(job["created_at"], job["started_at"]),
            "stages": stages, "total_s": seconds(job["created_at"], job["finished_at"])}


def run_alone(url: str, key: str, examples: int) -> dict[str, Any]:
    job_id = submit(url, key, examples)
    return summary(wait_finished(url, {"job": (key, job_id)})["job"])


def run_together(url: str, keys: dict[str, str], big: int, small: int) -> dict[str, Any]:
    """A's big job; B's small one once A is generating."""
    a = submit(url, keys["a"], big)
    wait_for_stage(url, keys["a"], a, "generate")
    time.sleep(5)  # A's first wave of generate requests is in the teacher
    b = submit(url, keys["b"], small)
    states = wait_finished(url, {"a": (keys["a"], a), "b": (keys["b"], b)})
    return {name: summary(state) for name, state in states.items()}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each stage's and the whole job's median seconds over repeated runs."""
    stages = {name: statistics.median(r["stages"][name] for r in runs) for name in runs[0]["stages"]
              if all(r["stages"].get(name) is not None for r in runs)}
    return {"stages": stages, "total_s": statistics.median(r["total_s"] for r in runs)}


def print_table(result: dict[str, Any]) -> None:
    runs = result["runs"]
    together = {key: {who: median_run([r[who] for r in runs[key]]) for who in ("a", "b")}
                for key in ("together", "together_without_priority")}
    n = len(runs["together"])
    columns = [("alone", runs["b_alone"]), (f"with A (x{n})", together["together"]["b"]),
               (f"with A, no priority (x{n})", together["together_without_priority"]["b"])]
    print(f"owner B's small job ({result['small']} examples), seconds per stage; A's job has {result['big']}:")
    print(f"{'stage':<14}" + "".join(f"{name:>28}" for name, _ in columns))
    for stage in ("plan", "generate", "label", "curate", "teacher_check"):
        print(f"{stage:<14}" + "".join(f"{_fmt(run['stages'].get(stage)):>28}" for _, run in columns))
    print(f"{'whole job':<14}" + "".join(f"{_fmt(run['total_s']):>28}" for _, run in columns))
    a_cols = [("alone", runs["a_alone"]), ("with B", together["together"]["a"]),
              ("with B, no priority", together["together_without_priority"]["a"])]
    print("owner A's big job: " + ", ".join(f"{name} {_fmt(run['total_s'])} s" for name, run in a_cols))
    print("all jobs succeeded" if result["all_succeeded"] else "NOT all jobs succeeded")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def measure(url: str, service: Service, keys: dict[str, str], big: int, small: int, repeats: int) -> dict[str, Any]:
    service.restart_worker()
    runs: dict[str, Any] = {"warm_up": run_alone(url, keys["a"], big), "a_alone": run_alone(url, keys["a"], big),
                            "b_alone": run_alone(url, keys["b"], small),
                            "together": [], "together_without_priority": []}
    for _ in range(repeats):
        for key, priority in (("together", "true"), ("together_without_priority", "false")):
            service.restart_worker(TEACHER_PRIORITY=priority)
            runs[key].append(run_together(url, keys, big, small))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=60, help="examples in owner A's job")
    parser.add_argument("--small", type=int, default=12, help="examples in owner B's job")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each together variant")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    teacher_url, teacher = os.environ.get("TEACHER_URL"), None
    if not teacher_url:
        from tests.support.teacher import TeacherServer

        teacher = TeacherServer(Path(tempfile.mkdtemp()) / "teacher.log")
        teacher_url = teacher.wait()
    db, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp(prefix="fair-share-"))
    admin_key = "vt_bench_" + secrets.token_urlsafe(24)
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
           "QUEUE_PREFIX": f"bench-{db}-", "ARTIFACT_DIR": str(scratch / "a"), "WORK_DIR": str(scratch / "w"),
           "TEACHER_URL": teacher_url, "AUTH": "true", "VIBETUNE_ADMIN_KEY": admin_key, "DEFAULT_WORKER_SLOTS": "2"}
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    service = None
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "app.cli.main", "migrate"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        service = Service(env, scratch)
        wait_up(service.url, admin_key)
        keys = {name: owner_key(service.url, admin_key, f"owner-{name}") for name in ("a", "b")}
        runs = measure(service.url, service, keys, args.big, args.small, args.repeats)
    finally:
        if service is not None:
            service.stop()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if teacher is not None:
            teacher.stop()
    states = [runs["warm_up"], runs["a_alone"], runs["b_alone"],
              *(job for key in ("together", "together_without_priority") for run in runs[key] for job in run.values())]
    result = {"big": args.big, "small": args.small, "default_worker_slots": 2, "runs": runs,
              "all_succeeded": all(s["status"] == "succeeded" for s in states),
              "wall_s": round(time.monotonic() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"written to {args.out}")
    if not result["all_succeeded"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
