"""Fault soak: N small jobs through a whole installation of separate processes that share no disk,
while, at random moments, its parts fail.

The soak owns everything it breaks: a private PostgreSQL cluster and Redis server, moto's S3
server behind a proxy, a proxy in front of the teacher, the API, one default worker and one gpu
worker, each process with its own empty disk. Faults, in a shuffled cycle so each type comes
round (`FAULTS`):

* `kill_default_worker`, `kill_gpu_worker`: SIGKILL to the worker's whole process group; a
  replacement starts 2 s later on a new, empty disk (another machine, as compose would restart it);
* `restart_redis`: Redis killed and started again; it keeps nothing on disk, so every queued
  message is gone (the workers' sweep notices the new `run_id`);
* `restart_postgres`: a fast shutdown (every connection cut), 3 s down, started again;
* `restart_s3`: the object store unreachable for 8 s, every open connection cut, then back with its
  data, as a MinIO restart looks to its clients (moto keeps objects in memory only, so killing it
  would lose data rather than restart a store);
* `slow_teacher`: each chunk of the teacher's answers held 0.5 s, for 40 s.

Then every job must end `succeeded`, or `failed` with a reason naming one of the faults; none may
stay queued or running past the deadline; every artifact of every succeeded job is downloaded
through the API and must match its sha256. Counts are printed and written as JSON.

    .venv/bin/python bench/soak.py --jobs 20            # starts the bundled teacher unless TEACHER_URL answers
    .venv/bin/python bench/soak.py --jobs 3 --gap 8 20  # the short version tests/integration/test_soak.py runs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_services import PostgresCluster, RedisServer, TcpProxy  # noqa: E402

from app.cli.supervisor import api_command  # noqa: E402
from tests.support.processes import Process, free_port, start_worker  # noqa: E402
from tests.support.s3 import make_bucket, s3_server  # noqa: E402

FAULTS = ("kill_default_worker", "kill_gpu_worker", "restart_redis", "restart_postgres", "restart_s3", "slow_teacher")
#: Words a failed job's reason must contain to be blamed on a fault (else it is unexplained).
FAULT_WORDS = {
    "kill_default_worker": ("worker",), "kill_gpu_worker": ("worker",),
    "restart_redis": ("broker", "queue", "redis", "kombu"),
    "restart_postgres": ("database", "psycopg", "sqlalchemy", "operationalerror"),
    "restart_s3": ("s3", "botocore", "endpoint", "store"),
    "slow_teacher": ("teacher", "timed out", "timeout"),
}
ADMIN_KEY = "vt_soak_" + "k" * 40
BUCKET = "soak"
TERMINAL = ("succeeded", "failed", "canceled")

#: Small jobs: two labels, a handful of examples, a few training steps.
TASKS = [
    ("Decide whether a short message is about the weather or about sports", ["weather", "sports"],
     [("Heavy rain is expected tonight", "weather"), ("The home team won the final", "sports")]),
    ("Sort customer messages into billing or shipping questions", ["billing", "shipping"],
     [("I was charged twice this month", "billing"), ("Where is my parcel?", "shipping")]),
    ("Tell whether a product review is positive or negative", ["positive", "negative"],
     [("Works perfectly, I love it", "positive"), ("Broke after one day", "negative")]),
]


@dataclass
class SoakConfig:
    jobs: int = 20
    teacher_url: str | None = None
    seed: int = 0
    gap: tuple[float, float] = (30.0, 90.0)  # seconds between two faults
    train_share: float = 0.5  # the share of jobs that train a student (the others stop after the data)
    settle_minutes: float = 20.0  # how long after the last fault every job must have ended
    max_faults: int | None = None  # stop breaking things after this many (None: until every job ended)
    workdir: Path | None = None


@dataclass
class SoakReport:
    config: dict[str, Any]
    faults: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing lost or stuck, no unexplained failure, no artifact missing or corrupt."""
        return (self.counts.get("stuck", 0) == 0 and self.counts.get("lost", 0) == 0
                and self.counts.get("failed_unexplained", 0) == 0
                and self.artifacts.get("missing", 0) == 0 and self.artifacts.get("checksum_failures", 0) == 0)


class Installation:
    """Every process of one vibetune installation, on private services the soak may break."""

    def __init__(self, root: Path, teacher_url: str) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresCluster()
        self.redis = RedisServer(self.logs)
        self._closing = ExitStack()
        self.processes: dict[str, Process] = {}
        self.disks = 0
        upstream = httpx.URL(teacher_url)
        self.teacher = TcpProxy(upstream.host, upstream.port or 80)
        self.teacher_url = f"http://127.0.0.1:{self.teacher.port}{upstream.path}"

    def start(self) -> None:
        self._closing.callback(self.postgres.stop)
        self.postgres.start()
        self._closing.callback(self.redis.stop)
        self.redis.start()
        s3_env = self._closing.enter_context(s3_server(self.logs))
        make_bucket(s3_env, BUCKET)
        s3_port = httpx.URL(s3_env["AWS_ENDPOINT_URL"]).port
        assert s3_port is not None
        self.s3 = TcpProxy("127.0.0.1", s3_port).start()
        self._closing.callback(self.s3.stop)
        self.teacher.start()
        self._closing.callback(self.teacher.stop)
        self.env = {
            **s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.s3.port}",
            "ARTIFACT_STORE": f"s3://{BUCKET}/installation",
            "DATABASE_URL": self.postgres.url, "REDIS_URL": self.redis.url, "QUEUE_PREFIX": "soak-",
            "TEACHER_URL": self.teacher_url, "VIBETUNE_ADMIN_KEY": ADMIN_KEY, "AUTH": "on",
            "JOB_LEASE_SECONDS": "10", "JOB_HEARTBEAT_SECONDS": "1", "RECOVERY_SWEEP_SECONDS": "5",
            "TRAIN_CHECKPOINT_SECONDS": "0", "MAX_ACTIVE_JOBS_PER_OWNER": "1000", "DEFAULT_WORKER_SLOTS": "2",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        migrate = Process([sys.executable, "-m", "app.cli.main", "migrate"], self.logs / "migrate.log",
                          env=self._env("migrate"))
        if migrate.proc.wait(timeout=300) != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.output()[-3000:]}")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        api = Process(list(api_command("127.0.0.1", port)), self.logs / "api.log", env=self._env("api"))
        self.processes["api"] = api
        api.wait_for(lambda: _answers(f"{self.url}/health"), 60, "the API answering")
        self.start_worker("default")
        self.start_worker("gpu")

    def _env(self, name: str) -> dict[str, str]:
        disk = self.root / "disks" / name
        return {**self.env, "WORK_DIR": str(disk / "work"), "ARTIFACT_DIR": str(disk / "artifacts")}

    def start_worker(self, queue: str) -> None:
        """A worker for `queue` on a new, empty disk."""
        self.disks += 1
        name = f"{queue}-{self.disks}"
        self.processes[queue] = start_worker(queue, self.logs / f"{name}.log", concurrency=2 if queue == "default"
                                             else 1, module="workers.main", env=self._env(name))

    def kill_worker(self, queue: str) -> None:
        worker = self.processes[queue]
        worker.signal(signal.SIGKILL)
        worker.stop()
        time.sleep(2)
        self.start_worker(queue)

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self._closing.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


class Client:
    """The API as a patient person uses it: a request that meets an outage is tried again."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(60):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError:
                response = None
            if response is not None and (response.status_code < 500 or _saved_but_failed(response)):
                return response
            time.sleep(min(5.0, 0.5 * (attempt + 1)))
        raise RuntimeError(f"{method} {path} kept failing")


def _saved_but_failed(response: httpx.Response) -> bool:
    """The API's 503 for a job it saved but could not queue (the job is failed, with that reason)."""
    return response.status_code == 503 and "was saved" in response.text


def job_body(index: int, train_share: float) -> dict[str, Any]:
    """The body of job `index`; `train_share` of the jobs, spread evenly, train a student."""
    task, labels, tests = TASKS[index % len(TASKS)]
    trains = int((index + 1) * train_share) > int(index * train_share)
    body: dict[str, Any] = {"task": task, "labels": labels, "num_examples": 6,
                            "test_set": [{"input": text, "output": label} for text, label in tests]}
    if trains:
        # Only the f16 GGUF (and the adapter's): faults, not quantization, are what is soaked.
        body["training"] = {"epochs": 4, "batch_size": 2, "method": "lora"}
        body["exports"] = ["f16"]
    else:
        body["until"] = "data"
    return body


def inject(install: Installation, fault: str, status: Callable[[], list[dict[str, Any]]]) -> str:
    """Cause `fault`; returns what was done, in words."""
    if fault == "kill_default_worker":
        install.kill_worker("default")
        return "SIGKILL to the default worker; a new one on an empty disk 2 s later"
    if fault == "kill_gpu_worker":
        # The moment is random, but a training run is the worker's work worth losing: wait a while for one.
        deadline = time.monotonic() + 120
        while not (training := [job["id"] for job in status() if job.get("stage") == "train"]) \
                and time.monotonic() < deadline:
            time.sleep(2)
        install.kill_worker("gpu")
        return f"SIGKILL to the gpu worker (training: {len(training)} jobs); a new one on an empty disk 2 s later"
    if fault == "restart_redis":
        install.redis.restart()
        return "Redis killed and started again (every queued message lost)"
    if fault == "restart_postgres":
        install.postgres.restart(down_seconds=3)
        return "PostgreSQL fast shutdown, 3 s down, started again"
    if fault == "restart_s3":
        install.s3.outage(8)
        return "object store unreachable for 8 s, open connections cut"
    if fault == "slow_teacher":
        install.teacher.slow(0.5, 40)
        return "teacher answers held 0.5 s per chunk for 40 s"
    raise ValueError(fault)


def run_soak(config: SoakConfig) -> SoakReport:
    """Run the soak; the report says what happened to every job and artifact."""
    if config.teacher_url is None:
        raise ValueError("a teacher URL is needed")
    rng = random.Random(config.seed)
    root = config.workdir or Path(tempfile.mkdtemp(prefix="vibetune-soak-"))
    report = SoakReport(config={**asdict(config), "workdir": str(root)})
    started = time.monotonic()
    install = Installation(root, config.teacher_url)
    try:
        install.start()
        client = Client(install.url)
        ids = _submit(client, [job_body(i, config.train_share) for i in range(config.jobs)])

        def status() -> list[dict[str, Any]]:
            return [client.request("GET", f"/api/jobs/{job_id}").json() for job_id in ids]

        cycle: list[str] = []
        last_fault = time.monotonic()
        while not all(job["status"] in TERMINAL for job in status()):
            if not cycle:
                cycle = rng.sample(FAULTS, len(FAULTS))
            time.sleep(rng.uniform(*config.gap))
            if all(job["status"] in TERMINAL for job in status()) or len(report.faults) == config.max_faults:
                break
            fault = cycle.pop()
            at = round(time.monotonic() - started, 1)
            detail = inject(install, fault, status)
            report.faults.append({"fault": fault, "at_s": at, "detail": detail})
            print(f"[{at:7.1f}s] {fault}: {detail}", flush=True)
            last_fault = time.monotonic()
        deadline = last_fault + config.settle_minutes * 60
        while not all(job["status"] in TERMINAL for job in status()) and time.monotonic() < deadline:
            time.sleep(5)
        _judge(report, client, ids, status())
    finally:
        report.wall_s = round(time.monotonic() - started, 1)
        install.stop()
    return report


def _submit(client: Client, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        response = client.request("POST", "/api/jobs", json=body)
        if response.status_code == 201:
            ids.append(response.json()["id"])
        elif match := re.search(r"job ([0-9a-f-]{36}) was saved", response.text):
            ids.append(match.group(1))
        else:
            raise RuntimeError(f"the job was refused: {response.status_code} {response.text}")
    return ids


def _judge(report: SoakReport, client: Client, ids: list[str], jobs: list[dict[str, Any]]) -> None:
    injected = {fault["fault"] for fault in report.faults}
    words = [word for fault in injected for word in FAULT_WORDS[fault]]
    listed: set[str] = set()
    while len(page := client.request("GET", "/api/jobs", params={"limit": 200, "offset": len(listed)}).json()["items"]):
        listed.update(job["id"] for job in page)
    counts = {"submitted": len(ids), "succeeded": 0, "failed_explained": 0, "failed_unexplained": 0,
              "canceled": 0, "stuck": 0, "lost": len(set(ids) - listed)}
    artifacts = {"checked": 0, "missing": 0, "checksum_failures": 0}
    for job in jobs:
        error = job.get("error") or {}
        reason = f"{error.get('code', '')}: {error.get('message', '')}"
        if job["status"] == "succeeded":
            counts["succeeded"] += 1
            for key, value in _check_artifacts(client, job["id"]).items():
                artifacts[key] += value
        elif job["status"] == "failed":
            explained = any(word in reason.lower() for word in words)
            counts["failed_explained" if explained else "failed_unexplained"] += 1
        elif job["status"] == "canceled":
            counts["canceled"] += 1
        else:
            counts["stuck"] += 1
        report.jobs.append({"id": job["id"], "status": job["status"], "until": job["spec"].get("until"),
                            "stages": {s["name"]: s["status"] for s in job["stages"]},
                            "resumed_from": next((s["metrics"].get("resumed_from") for s in job["stages"]
                                                  if s["name"] == "train"), None),
                            "reason": reason if job["status"] == "failed" else None})
    counts["faults"] = len(report.faults)
    report.counts, report.artifacts = counts, artifacts


def _check_artifacts(client: Client, job_id: str) -> dict[str, int]:
    """Download every listed artifact of the job through the API and compare its sha256."""
    found = {"checked": 0, "missing": 0, "checksum_failures": 0}
    for artifact in client.request("GET", f"/api/jobs/{job_id}/artifacts").json()["items"]:
        digest = hashlib.sha256()
        with client.http.stream("GET", f"/api/jobs/{job_id}/artifacts/{artifact['name']}") as response:
            if response.status_code != 200:
                found["missing"] += 1
                continue
            for chunk in response.iter_bytes():
                digest.update(chunk)
        found["checked"] += 1
        found["checksum_failures"] += digest.hexdigest() != artifact["sha256"]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gap", type=float, nargs=2, default=(30.0, 90.0), metavar=("MIN", "MAX"))
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--settle-minutes", type=float, default=20.0)
    parser.add_argument("--max-faults", type=int, default=None)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args(argv)
    teacher_url = os.environ.get("TEACHER_URL")
    teacher = None
    if not teacher_url or not _answers(f"{teacher_url.rstrip('/')}/models"):
        from tests.support.teacher import TeacherServer

        teacher = TeacherServer(Path(tempfile.mkdtemp(prefix="soak-teacher-")) / "teacher.log")
        teacher_url = teacher.wait()
    try:
        report = run_soak(SoakConfig(jobs=args.jobs, teacher_url=teacher_url, seed=args.seed, gap=tuple(args.gap),
                                     train_share=args.train_share, settle_minutes=args.settle_minutes,
                                     max_faults=args.max_faults))
    finally:
        if teacher is not None:
            teacher.stop()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(json.dumps({"counts": report.counts, "artifacts": report.artifacts, "wall_s": report.wall_s}, indent=2))
    print(f"ok: {report.ok}; results in {args.results}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
