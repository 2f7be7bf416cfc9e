"""Keeps a running job's lease alive and notices when it is canceled or taken over."""

from __future__ import annotations

import logging
import threading
import uuid

from app import jobs
from app.db import session_scope
from app.models import JobStatus

log = logging.getLogger(__name__)


class JobCanceled(Exception):
    """The job was canceled while it ran."""


class LeaseLost(Exception):
    """Another worker took the job over (this worker was presumed dead)."""


class RunMonitor:
    """A background thread renewing the lease every `interval` seconds; stages poll `check()`."""

    def __init__(self, job_id: uuid.UUID, token: str, lease_seconds: int, interval: float) -> None:
        self.job_id, self.token = job_id, token
        self.lease_seconds, self.interval = lease_seconds, interval
        self._stop = threading.Event()
        self.canceled = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> RunMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def beat(self) -> None:
        """Renew the lease once and update the canceled/lost flags."""
        with session_scope() as session:
            if jobs.renew_lease(session, self.job_id, self.token, self.lease_seconds):
                return
            status = jobs.current_status(session, self.job_id)
        if status in (JobStatus.CANCELED.value, None):
            self.canceled.set()
        else:
            self.lost.set()

    def check(self) -> None:
        """Raise if the run must stop."""
        if self.canceled.is_set():
            raise JobCanceled(str(self.job_id))
        if self.lost.is_set():
            raise LeaseLost(str(self.job_id))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a database blip must not kill the heartbeat
                log.exception("heartbeat for job %s failed", self.job_id)
            if self.canceled.is_set() or self.lost.is_set():
                return
