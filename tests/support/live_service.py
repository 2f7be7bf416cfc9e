"""The service as people reach it: a real uvicorn API process on a free port, and (optionally)
real default and gpu workers, all on this test run's database and a private set of queues."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
from sqlalchemy import select

from app import jobs
from app.cli.supervisor import api_command
from app.db import session_scope
from app.models import Job
from app.s3_storage import S3Storage
from tests.support import http
from tests.support.processes import Process, free_port, start_worker
from tests.support.s3 import s3_client


def cancel_unfinished_jobs() -> None:
    """Earlier tests leave queued jobs behind; a starting worker would re-enqueue them all
    (its recovery sweep) and the new jobs would wait behind them on the slow CPU teacher."""
    with session_scope() as session:
        ids = session.execute(select(Job.id).where(Job.status.in_(["queued", "running"]))).scalars().all()
        for job_id in ids:
            jobs.cancel(session, job_id)


class LiveService:
    """API (and workers) as child processes; `url` is the API's base URL.

    With `store` (ARTIFACT_STORE and the AWS_* settings of an S3-compatible server) the processes
    share no disk, as on separate machines: each has its own empty WORK_DIR and ARTIFACT_DIR
    (`disk(name)`), and artifacts, data sets and checkpoints go through the store alone."""

    def __init__(self, logs: Path, *, workers: bool, env: dict[str, str] | None = None, default_slots: int = 1,
                 store: dict[str, str] | None = None) -> None:
        self.logs = logs
        self.store = store
        self.env = {"QUEUE_PREFIX": f"live-{uuid.uuid4().hex[:6]}-", "DEFAULT_WORKER_SLOTS": str(default_slots),
                    **(env or {}), **(store or {})}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.workers: dict[str, Process] = {}
        self.api = Process(list(api_command("127.0.0.1", port)), logs / "api.log", env=self._env("api"))
        try:
            self.api.wait_for(self._answers, timeout=60, what="API answering")
            if workers:
                cancel_unfinished_jobs()
                for queue in ("default", "gpu"):
                    self.start_worker(queue, concurrency=default_slots if queue == "default" else 1)
        except BaseException:
            self.stop()
            raise

    def disk(self, name: str) -> Path:
        """The folder that stands for the disk of process `name` (with a store)."""
        return self.logs / f"disk-{name}"

    def _env(self, name: str) -> dict[str, str]:
        if self.store is None:
            return self.env
        disk = self.disk(name)
        return {**self.env, "WORK_DIR": str(disk / "work"), "ARTIFACT_DIR": str(disk / "artifacts")}

    def start_worker(self, queue: str, *, concurrency: int = 1, name: str | None = None,
                     env: dict[str, str] | None = None) -> Process:
        """Start a real worker for `queue` (as process `name`, default the queue's name; with a store
        a new name is a machine with an empty disk), with `env` over the service's settings."""
        name = name or queue
        worker = start_worker(queue, self.logs / f"{name}.log", concurrency=concurrency, module="workers.main",
                              env={**self._env(name), **(env or {})})
        self.workers[queue] = worker
        return worker

    def storage(self) -> S3Storage:
        """The service's object store, read from this test process (another machine, with its own cache)."""
        assert self.store is not None, "this service keeps its artifacts on local disk"
        url = urlparse(self.store["ARTIFACT_STORE"])
        return S3Storage(url.netloc, url.path, self.disk("tests") / "store-cache", client=s3_client(self.store))

    def _answers(self) -> bool:
        try:
            return http.get(f"{self.url}/api/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        """The tail of every process's log, for failure messages."""
        parts = [self.api, *self.workers.values()]
        return "\n".join(f"--- {p.log.name} ---\n{p.output()[-3000:]}" for p in parts)

    def stop(self) -> None:
        for process in (*self.workers.values(), self.api):
            process.stop()
