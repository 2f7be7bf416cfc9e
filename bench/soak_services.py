"""The services bench/soak.py owns and breaks: a private PostgreSQL cluster and Redis server (so
restarting them disturbs nothing else on the machine), and a TCP proxy that can take a server off
the network for a while or slow it down (used in front of the S3 server and the teacher).

Only the standard library, the test helpers (tests/support) and `app.cli.local_services` are needed."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.cli.local_services import listens
from tests.support.processes import Process, free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed; the soak runs its own cluster")
    return found


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free port (trust auth, user `postgres`). As root, its
    commands run as the `postgres` user, since PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        # Its own folder, open to the `postgres` user (a test's tmp_path is private to root).
        self.folder = Path(tempfile.mkdtemp(prefix="vibetune-soak-postgres-"))
        self.folder.chmod(0o755)
        self.data, self.socket_dir = self.folder / "data", self.folder / "socket"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/vibetune"
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        if not self.data.exists():
            self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                  f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                  "start")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop (fast: every connection is cut), stay down `down_seconds`, start again."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        """Stop the server and remove the cluster."""
        if self.data.exists():
            subprocess.run(["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0) +
                           [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """A private Redis keeping nothing on disk (as `make up` runs it): a restart loses every message."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "redis.log"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Process | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed; the soak runs its own")
        self.process = Process(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], self.log.with_name(f"redis-{time.time_ns()}.log"))
        self.process.wait_for(lambda: listens("127.0.0.1", self.port), 30, "Redis listening")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None


@dataclass
class _Mode:
    down_until: float = 0.0
    slow_until: float = 0.0
    delay: float = 0.0


class TcpProxy:
    """Forwards a local port to `upstream` (host, port). `outage(seconds)` cuts every connection
    and refuses new ones for that long; `slow(delay, seconds)` holds each forwarded chunk."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode = _Mode()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.mode.down_until:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer, slow=False), self._pipe(up_reader, writer, slow=True))
        self._writers.difference_update((writer, up_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if slow and time.monotonic() < self.mode.slow_until:
                    await asyncio.sleep(self.mode.delay)
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def outage(self, seconds: float) -> None:
        """Take the server off the network for `seconds` (blocks until it is back)."""

        async def cut() -> None:
            assert self._server is not None
            self.mode.down_until = time.monotonic() + seconds
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(10)
        time.sleep(seconds)
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def slow(self, delay: float, seconds: float) -> None:
        """Hold each chunk the server sends back for `delay` seconds, for the next `seconds`."""
        self.mode.delay, self.mode.slow_until = delay, time.monotonic() + seconds

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
