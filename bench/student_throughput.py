"""Student serving throughput: the service's `/v1` (dynamic batching) against vLLM, same model folder.

Serves the bundled student (SmolLM2-135M-Instruct standing in for a tuned one) twice on this
machine, one server after the other so they never share the cores: (a) the real API under
uvicorn, on a throwaway database with one succeeded job whose model is that folder and a random
admin key, and (b) vLLM's OpenAI server on the same folder (`.venv-teacher`, started the way the
teacher is: `workers.teacher_server`). Against each, after a warm-up call (the service loads the
student on it), it sends `--requests` greedy chat completions (16 different prompts in turn,
`--max-tokens` each) from 1, 8 and 32 concurrent clients, and prints requests/s, completion
tokens/s and latency p50/p99 per level, and the service's throughput as a share of vLLM's
(target at 32 clients: at least 0.5). Writes bench/results/student_throughput.json (or `--out`).

    .venv/bin/python bench/student_throughput.py [--quick] [--requests 64] [--max-tokens 32] [--skip-vllm]
        [--service-dtypes auto,bfloat16]

`--quick` sends 16 requests per level of at most 16 tokens. The service runs with its settings
(SERVE_MAX_BATCH, SERVE_BATCH_WINDOW_MS from the environment, else their defaults), once per
`--service-dtypes` value (SERVE_DTYPE; the first is the headline ratio); vLLM computes in bfloat16
where the CPU does natively, the service by default in float32 on a CPU (all in the results). Loopback only; every
level is a bounded number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "student_throughput.json"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LEVELS = (1, 8, 32)
TARGET_AT_32 = 0.5
PROMPTS = [
    "What is the capital of France?",
    "Is this SMS spam? 'WINNER!! Claim your free prize now, text 8007'",
    "Name three colours.",
    "Write one sentence about the sea.",
    "What is 12 times 7?",
    "Translate 'good morning' into Spanish.",
    "Give me a tip for sleeping better.",
    "Summarise: The meeting moved to Thursday because the room was booked on Tuesday.",
    "Is the review 'the plot dragged and the acting was wooden' positive or negative?",
    "Extract the date from: 'Your parcel arrives on 3 March 2025 before noon.'",
    "Write a haiku about autumn leaves.",
    "What does a thermometer measure?",
    "List two fruits that are red.",
    "Explain in one sentence what a noun is.",
    "Who wrote Romeo and Juliet?",
    "Suggest a name for a small grey cat.",
]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 < q <= 1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summarise(latencies: list[float], wall_s: float, tokens: int) -> dict[str, float]:
    """One level's figures from each request's latency (s), the level's wall time and its tokens."""
    return {
        "requests": len(latencies), "seconds": round(wall_s, 3),
        "requests_per_s": round(len(latencies) / wall_s, 3), "tokens_per_s": round(tokens / wall_s, 2),
        "completion_tokens": tokens,
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1), "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def ratios(service: dict[str, dict[str, float]], vllm: dict[str, dict[str, float]], key: str) -> dict[str, float]:
    """The service's `key` (e.g. requests_per_s) as a share of vLLM's, per level both ran."""
    return {level: round(service[level][key] / vllm[level][key], 3)
            for level in service if level in vllm and vllm[level][key] > 0}


async def drive(url: str, key: str, model: str, clients: int, requests: int, max_tokens: int) -> dict[str, float]:
    """`requests` completions from `clients` concurrent clients; their figures (`summarise`)."""
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        todo.put_nowait(i)
    latencies: list[float] = []
    tokens = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=900,
                                 limits=limits) as client:

        async def one_client() -> None:
            nonlocal tokens
            while not todo.empty():
                i = todo.get_nowait()
                body = {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                        "max_tokens": max_tokens, "temperature": 0}
                t0 = time.perf_counter()
                response = await client.post("/chat/completions", json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                tokens += response.json()["usage"]["completion_tokens"]

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - start
    return summarise(latencies, wall, tokens)


def measure(name: str, url: str, key: str, model: str, requests: int, max_tokens: int) -> dict[str, dict[str, float]]:
    """Every level against one server, after a warm-up call; printed as it goes."""
    asyncio.run(drive(url, key, model, 1, 1, max_tokens))
    results = {}
    for clients in LEVELS:
        r = results[str(clients)] = asyncio.run(drive(url, key, model, clients, requests, max_tokens))
        print(f"{name:8s} {clients:3d} clients  {r['requests_per_s']:7.2f} req/s  {r['tokens_per_s']:8.1f} tok/s  "
              f"p50 {r['p50_ms']:8.0f} ms  p99 {r['p99_ms']:8.0f} ms", flush=True)
    return results


def wait_ready(url: str, key: str, process: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before it was ready")
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready within {seconds:.0f} s")


@contextmanager
def service(folder: Path, logs: Path) -> Iterator[tuple[str, str, str]]:
    """The API serving `folder` as a finished job's model: (base URL, key, model id)."""
    db, scratch, key = f"vibetune_bench_{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp(prefix="vibetune-bench-")), \
        "vt_bench_" + secrets.token_urlsafe(24)
    # Before any app module reads its settings: this process (the job) and the server use this database.
    os.environ.update(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", AUTH="true",
                      ARTIFACT_DIR=str(scratch / "artifacts"), WORK_DIR=str(scratch / "work"),
                      VIBETUNE_ADMIN_KEY=key)
    from app.auth import ensure_admin_key
    from app.cli.supervisor import api_command
    from app.config import get_settings
    from app.db import reset_engine, session_scope
    from tests.support.database import create_database, drop_database, migrate_to_head
    from tests.support.factories import make_finished_job
    from tests.support.processes import Process, free_port

    get_settings.cache_clear()
    reset_engine()  # a second service run in this process uses its own database
    create_database(ADMIN_URL, db)
    server = None
    try:
        migrate_to_head(os.environ["DATABASE_URL"])
        with session_scope() as session:
            ensure_admin_key(session, key)
        model = str(make_finished_job(model_dir=folder))
        port = free_port()
        server = Process(list(api_command("127.0.0.1", port, "--log-level", "warning")), logs / "api.log")
        url = f"http://127.0.0.1:{port}/v1"
        wait_ready(url, key, server.proc, 120)
        yield url, key, model
    finally:
        if server is not None:
            server.stop(timeout=30)
        drop_database(ADMIN_URL, db)
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def vllm(folder: Path, logs: Path) -> Iterator[tuple[str, str, str]]:
    """vLLM's OpenAI server on `folder`, as the teacher is started: (base URL, key, model name)."""
    from tests.support.processes import Process, free_port
    from workers.teacher_server import server_command, server_env

    port = free_port()
    server = Process(server_command(folder, "student", port), logs / "vllm.log", env=server_env())
    try:
        url = f"http://127.0.0.1:{port}/v1"
        wait_ready(url, "EMPTY", server.proc, 1200)
        yield url, "EMPTY", "student"
    finally:
        server.stop(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 requests per level, at most 16 tokens each")
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--skip-vllm", action="store_true", help="measure the service only")
    parser.add_argument("--service-dtypes", default="auto",
                        help="SERVE_DTYPE values to serve the student in, one service run each (e.g. auto,bfloat16)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    requests, max_tokens = (16, 16) if args.quick else (args.requests, args.max_tokens)

    from app.config import get_settings
    from app.inference import compute_dtype
    from workers.bundled_models import STUDENT, model_dir
    from workers.teacher_server import cpu_dtype

    folder, logs = model_dir(STUDENT), Path(tempfile.mkdtemp(prefix="vibetune-bench-logs-"))
    print(f"{STUDENT.name}: {requests} requests per level, max_tokens {max_tokens}; logs in {logs}", flush=True)
    dtypes = [d.strip() for d in args.service_dtypes.split(",") if d.strip()]
    by_dtype: dict[str, Any] = {}
    for dtype in dtypes:
        os.environ["SERVE_DTYPE"] = dtype  # read by the API server this starts
        with service(folder, logs) as (url, key, model):
            settings = get_settings()
            by_dtype[dtype] = measure(f"service {dtype}", url, key, model, requests, max_tokens)
    results: dict[str, Any] = {"service": by_dtype[dtypes[0]], "service_by_dtype": by_dtype}
    if not args.skip_vllm:
        with vllm(folder, logs) as (url, key, model):
            results["vllm"] = measure("vLLM", url, key, model, requests, max_tokens)
        results["ratio_requests_per_s"] = ratios(results["service"], results["vllm"], "requests_per_s")
        results["ratio_tokens_per_s"] = ratios(results["service"], results["vllm"], "tokens_per_s")
        results["ratio_requests_per_s_by_dtype"] = {
            dtype: ratios(levels, results["vllm"], "requests_per_s") for dtype, levels in by_dtype.items()}
        results["target_met"] = results["ratio_requests_per_s"].get("32", 0.0) >= TARGET_AT_32
        for dtype, ratio in results["ratio_requests_per_s_by_dtype"].items():
            met = ratio.get("32", 0.0) >= TARGET_AT_32
            print(f"service ({dtype})/vLLM requests/s: " + ", ".join(f"{k} clients {v:.2f}x" for k, v in ratio.items())
                  + f"  (target at 32: >= {TARGET_AT_32}x: {'met' if met else 'NOT met'})")
    results = {"model": STUDENT.name, "requests_per_level": requests, "max_tokens": max_tokens, "quick": args.quick,
               "levels": list(LEVELS), "serve_max_batch": settings.serve_max_batch,
               "serve_batch_window_ms": settings.serve_batch_window_ms, "cpu_count": os.cpu_count(),
               "dtypes": {"service": {d: d if d != "auto" else str(compute_dtype()).removeprefix("torch.")
                                      for d in dtypes}, "vllm": cpu_dtype()}, **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
