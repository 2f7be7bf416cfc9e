"""The service as people reach it: a real uvicorn API process on a free port, and (optionally)
real default and gpu workers, all on this test run's database and a private set of queues."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from app import jobs
from app.cli.supervisor import api_command
from app.db import session_scope
from app.models import Job
from tests.support import http
from tests.support.processes import Process, free_port, start_worker


def cancel_unfinished_jobs() -> None:
    """Earlier tests leave queued jobs behind; a starting worker would re-enqueue them all
    (its recovery sweep) and the new jobs would wait behind them on the slow CPU teacher."""
    with session_scope() as session:
        ids = session.execute(select(Job.id).where(Job.status.in_(["queued", "running"]))).scalars().all()
        for job_id in ids:
            jobs.cancel(session, job_id)


class LiveService:
    """API (and workers) as child processes; `url` is the API's base URL."""

    def __init__(self, logs: Path, *, workers: bool, env: dict[str, str] | None = None, default_slots: int = 1) -> None:
        self.logs = logs
        self.env = {"QUEUE_PREFIX": f"live-{uuid.uuid4().hex[:6]}-", "DEFAULT_WORKER_SLOTS": str(default_slots),
                    **(env or {})}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.workers: list[Process] = []
        self.api = Process(list(api_command("127.0.0.1", port)), logs / "api.log", env=self.env)
        try:
            self.api.wait_for(self._answers, timeout=60, what="API answering")
            if workers:
                cancel_unfinished_jobs()
                for queue in ("default", "gpu"):
                    slots = default_slots if queue == "default" else 1
                    self.workers.append(start_worker(queue, logs / f"{queue}.log", concurrency=slots,
                                                     module="workers.main", env=self.env))
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        try:
            return http.get(f"{self.url}/api/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        """The tail of every process's log, for failure messages."""
        parts = [self.api, *self.workers]
        return "\n".join(f"--- {p.log.name} ---\n{p.output()[-3000:]}" for p in parts)

    def stop(self) -> None:
        for process in (*self.workers, self.api):
            process.stop()
