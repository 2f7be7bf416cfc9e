"""Latency of one short chat completion from a finished student over the OpenAI-compatible API.

Makes a throwaway database with one succeeded job whose model is the bundled student
(SmolLM2-135M-Instruct standing in for a tuned one), starts the real API under uvicorn, loads
the model with one warm-up call, then times `BENCH_CALLS` completions (greedy, `max_tokens` 16)
one after another, then as many streamed ones up to their first token. The database gets a
random admin key (stored as VIBETUNE_ADMIN_KEY would be) and every call is signed with it. Run with
`.venv/bin/python bench/student_latency.py`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLS = int(os.environ.get("BENCH_CALLS", "10"))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = f"vibetune_bench_{uuid.uuid4().hex[:8]}"
SCRATCH = Path(tempfile.mkdtemp(prefix="vibetune-bench-"))
ADMIN_KEY = "vt_bench_" + secrets.token_urlsafe(24)
# Before any app module reads its settings: the app's session_scope() and the API server use this database.
os.environ.update(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}",
                  ARTIFACT_DIR=str(SCRATCH / "artifacts"), WORK_DIR=str(SCRATCH / "work"),
                  AUTH="true", VIBETUNE_ADMIN_KEY=ADMIN_KEY)
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openai  # noqa: E402
from openai.types.chat import ChatCompletionMessageParam  # noqa: E402

from app.auth import ensure_admin_key  # noqa: E402
from app.cli.supervisor import api_command  # noqa: E402
from app.db import session_scope  # noqa: E402
from tests.support.database import create_database, drop_database, migrate_to_head  # noqa: E402
from tests.support.factories import make_finished_job  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from workers.bundled_models import STUDENT, model_dir  # noqa: E402

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Is this SMS spam? 'WINNER!! Claim your free prize now, text 8007'"},
]


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    create_database(ADMIN_URL, DB)
    server = None
    try:
        migrate_to_head(os.environ["DATABASE_URL"])
        with session_scope() as session:  # what `migrate` does with VIBETUNE_ADMIN_KEY
            ensure_admin_key(session, ADMIN_KEY)
        model = str(make_finished_job(model_dir=model_dir(STUDENT)))
        port = free_port()
        server = subprocess.Popen(api_command("127.0.0.1", port), cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/v1"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = openai.OpenAI(base_url=base, api_key=ADMIN_KEY, max_retries=0, timeout=300)
        t0 = time.perf_counter()
        client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=1)
        load = time.perf_counter() - t0

        total, first, tokens = [], [], []
        for _ in range(CALLS):
            t0 = time.perf_counter()
            reply = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=16)
            total.append(time.perf_counter() - t0)
            assert reply.usage is not None
            tokens.append(reply.usage.completion_tokens)
        for _ in range(CALLS):
            t0 = time.perf_counter()
            # Read to the end: a stream left dangling keeps the model busy for a token or two
            # and would delay the next call.
            seen = False
            for chunk in client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=16, stream=True):
                if not seen and chunk.choices and chunk.choices[0].delta.content:
                    first.append(time.perf_counter() - t0)
                    seen = True
        assert reply.usage is not None
        print(f"calls: {CALLS}, prompt {reply.usage.prompt_tokens} tokens, "
              f"answers {statistics.median(tokens):.0f} tokens (max 16)")
        print(f"first call (loads the model)  {load:7.2f} s")
        print(f"completion     p50 {statistics.median(total) * 1000:7.0f} ms   p95 {_pct(total, 0.95) * 1000:7.0f} ms")
        print(f"first token    p50 {statistics.median(first) * 1000:7.0f} ms   p95 {_pct(first, 0.95) * 1000:7.0f} ms")
        print(f"answer: {reply.choices[0].message.content!r}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop_database(ADMIN_URL, DB)
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
