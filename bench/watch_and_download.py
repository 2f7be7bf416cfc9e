"""What the dashboard and the CLI cost: how soon a watcher sees a change, and what a checked
download costs next to a bare one.

Starts the real API (uvicorn, no workers) on a throwaway database. Then, in one run:
1. a job's progress is written by the real status writer N times; a Server-Sent Events watcher
   (`GET /api/jobs/{id}/events`, what the dashboard and `vibetune tune` use) and a client polling
   `GET /api/jobs/{id}` once a second (what the page would do without events) each time how long
   the change took to reach them; plus the bytes each spends per idle minute;
2. a 200 MB artifact is fetched by `vibetune download`'s code path (stream, sha256, atomic
   rename) and by a bare httpx stream to a file, alternating, best of 3 each.
The service gets a random admin key (VIBETUNE_ADMIN_KEY, stored by `migrate`) and every request,
the event stream and both downloads included, is signed with it.
Run with `make bench` (or `.venv/bin/python bench/watch_and_download.py`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
ARTIFACT_MB = int(os.environ.get("BENCH_ARTIFACT_MB", "200"))
POLL_SECONDS = 1.0
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli.supervisor import api_command  # noqa: E402

ADMIN_KEY = "vt_bench_" + secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _setup() -> tuple[dict[str, str], str]:
    db, scratch = f"vibetune_bench_{uuid.uuid4().hex[:8]}", tempfile.mkdtemp()
    env = {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", "QUEUE_PREFIX": f"bench-{db}-",
           "ARTIFACT_DIR": f"{scratch}/a", "WORK_DIR": f"{scratch}/w", "AUTH": "true", "VIBETUNE_ADMIN_KEY": ADMIN_KEY}
    os.environ.update(env)  # before app modules read their settings
    # Also stores VIBETUNE_ADMIN_KEY as an admin key (app/cli/supervisor.py `first_admin_key`).
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], check=True, capture_output=True, cwd=ROOT)
    return env, scratch


class Watcher(threading.Thread):
    """Records when each `done` value of the first stage first reached it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[int, float] = {}
        self.bytes = 0

    def note(self, snapshot: dict) -> None:
        done = snapshot["stages"][0]["done"]
        if done is not None and done not in self.seen:
            self.seen[done] = time.perf_counter()


class EventWatcher(Watcher):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def run(self) -> None:
        from app.cli.client import parse_sse

        def counted(lines):
            for line in lines:
                self.bytes += len(line) + 1
                yield line

        try:
            with httpx.stream("GET", self.url, headers=AUTH, timeout=httpx.Timeout(10, read=None)) as response:
                for event, data in parse_sse(counted(response.iter_lines())):
                    if event == "job":
                        self.note(data)
        except httpx.HTTPError:  # the API stops at the end of the run
            pass


class PollingWatcher(Watcher):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def run(self) -> None:
        with httpx.Client(timeout=10, headers=AUTH) as client:
            while True:
                try:
                    response = client.get(self.url)
                except httpx.HTTPError:  # the API stops at the end of the run
                    return
                self.bytes += len(response.content)
                self.note(response.json())
                time.sleep(POLL_SECONDS)


def measure_watchers(base: str) -> None:
    from app import job_stages, jobs
    from app.db import session_scope
    from workers.scoring import percentiles

    job = httpx.post(f"{base}/api/jobs", json={"task": "bench: watch a job", "until": "data"}, headers=AUTH).json()
    job_id = uuid.UUID(job["id"])
    with session_scope() as session:
        jobs.claim(session, job_id, 3600)
        job_stages.start_stage(session, job_id, "plan", 0.0)
    events, polling = EventWatcher(f"{base}/api/jobs/{job_id}/events"), PollingWatcher(f"{base}/api/jobs/{job_id}")
    events.start()
    polling.start()
    time.sleep(2)
    written: dict[int, float] = {}
    for done in range(1, ROUNDS + 1):
        with session_scope() as session:
            job_stages.record_progress(session, job_id, "plan", done, ROUNDS, 0.0)
        written[done] = time.perf_counter()
        time.sleep(1.7)  # not a multiple of either interval, so the phases drift
    time.sleep(2)
    before = (events.bytes, polling.bytes)
    time.sleep(60)
    idle = (events.bytes - before[0], polling.bytes - before[1])
    for name, watcher in (("events (SSE)", events), (f"polling every {POLL_SECONDS:g}s", polling)):
        delays = [1000 * (watcher.seen[d] - written[d]) for d in written if d in watcher.seen]
        p = percentiles(delays)
        print(f"{name:>22}: change seen after p50 {p['p50']:6.0f} ms, p95 {p['p95']:6.0f} ms "
              f"({len(delays)}/{ROUNDS} changes)")
    print(f"{'idle minute':>22}: events {idle[0]} bytes, polling {idle[1]} bytes "
          f"({idle[1] / max(1, idle[0]):.0f}x more)")


def measure_download(base: str, scratch: str) -> None:
    from app.artifacts import save_artifact
    from app.cli.client import VibetuneClient
    from app.db import session_scope
    from app.storage import get_storage

    job = httpx.post(f"{base}/api/jobs", json={"task": "bench: download", "until": "data"}, headers=AUTH).json()
    with session_scope() as session:
        source = Path(scratch) / "weights.bin"
        with source.open("wb") as out:
            for _ in range(ARTIFACT_MB):
                out.write(os.urandom(1_000_000))
        save_artifact(session, get_storage(), uuid.UUID(job["id"]), "model/weights.bin", source)
    with VibetuneClient(base, api_key=ADMIN_KEY) as client:
        item = client.artifacts(job["id"])[0]
        checked, bare = [], []
        for attempt in range(3):
            target = Path(scratch) / f"checked-{attempt}"
            t0 = time.perf_counter()
            client.download(item, target)
            checked.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare_file = Path(scratch) / f"bare-{attempt}"
            with httpx.stream("GET", f"{base}{item['url']}", headers=AUTH) as response, bare_file.open("wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)
            bare.append(time.perf_counter() - t0)
    mb = item["size"] / 1e6
    print(f"{'download':>22}: checked {mb / min(checked):6.0f} MB/s, bare {mb / min(bare):6.0f} MB/s "
          f"(checked/bare time {min(checked) / min(bare):.2f}x, {mb:.0f} MB, best of 3)")


def main() -> None:
    from tests.support.processes import free_port

    env, scratch = _setup()
    port = free_port()
    api = subprocess.Popen(api_command("127.0.0.1", port), env={**os.environ, **env},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/api/models", headers=AUTH).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        print(f"EVENTS_POLL_SECONDS={os.environ.get('EVENTS_POLL_SECONDS', '1.0')}, {ROUNDS} changes")
        measure_watchers(base)
        measure_download(base, scratch)
    finally:
        api.terminate()
        api.wait(10)
        from app.db import reset_engine
        from tests.support.database import drop_database

        reset_engine()
        drop_database("postgresql://postgres@127.0.0.1:5432/postgres", env["DATABASE_URL"].rsplit("/", 1)[1])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
