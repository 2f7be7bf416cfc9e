"""Training beside a busy teacher on one CPU box: GNU OpenMP's default spin vs vibetune's short one.

torch and vLLM's CPU build use libgomp, whose idle threads spin at every barrier before they sleep
(`GOMP_SPINCOUNT`, 300,000 by default). `app/__init__.py` sets 1000 for every process of the
service. This bench measures why, side by side in one run, on the bundled student and a running
teacher:
  - seconds per training step of the student (batch 4 x 90 tokens, AdamW), alone and while four
    clients keep the teacher generating;
  - the teacher's generated tokens/s alone and beside each training run.
Each training run is its own process, so libgomp reads its own setting.

    python bench/cpu_sharing.py [--teacher-url http://127.0.0.1:8011/v1] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cpu_sharing.json"
SPINS = {"libgomp default": "300000", "vibetune": "1000"}

STEPS = """
import sys, time, torch
from transformers import AutoModelForCausalLM
from workers.bundled_models import STUDENT, model_dir
model = AutoModelForCausalLM.from_pretrained(model_dir(STUDENT), dtype=torch.float32)
optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
ids = torch.randint(0, 1000, (4, 90), generator=torch.Generator().manual_seed(0))
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    model(input_ids=ids, labels=ids).loss.backward()
    optimiser.step()
    optimiser.zero_grad()
    print(time.perf_counter() - started, flush=True)
"""


def tokens_per_s(base: str, before: float, started: float) -> float:
    """The teacher's generated tokens/s since `started`, when its count was `before`."""
    return round((generated_tokens(base) - before) / (time.perf_counter() - started), 1)


def generated_tokens(base: str) -> float:
    """vLLM's running count of generated tokens (its Prometheus metrics)."""
    text = httpx.get(base.removesuffix("/v1") + "/metrics", timeout=10).text
    match = re.search(r"^vllm:generation_tokens_total\{[^}]*\} ([0-9.e+]+)", text, re.M)
    assert match, "the teacher's /metrics has no vllm:generation_tokens_total"
    return float(match.group(1))


class BusyTeacher:
    """Four clients asking the teacher for long answers until stopped."""

    def __init__(self, base: str) -> None:
        self.base, self.stop = base, threading.Event()
        self.model = httpx.get(f"{base}/models", timeout=10).json()["data"][0]["id"]
        self.threads = [threading.Thread(target=self._ask, daemon=True) for _ in range(4)]

    def _ask(self) -> None:
        with httpx.Client(timeout=600) as client:
            while not self.stop.is_set():
                client.post(f"{self.base}/chat/completions", json={
                    "model": self.model, "max_tokens": 200,
                    "messages": [{"role": "user", "content": "Write a long story about a cat."}]})

    def __enter__(self) -> BusyTeacher:
        for thread in self.threads:
            thread.start()
        time.sleep(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:  # the answers under way finish, so the next run starts on an idle teacher
            thread.join()


def training(spin: str, steps: int, base: str | None) -> dict[str, float]:
    """Median seconds per step (the first, warm-up, left out) and, beside a teacher, its tokens/s."""
    env = {**os.environ, "GOMP_SPINCOUNT": spin}
    started, before = time.perf_counter(), generated_tokens(base) if base else 0.0
    out = subprocess.run([sys.executable, "-c", STEPS, str(steps)], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    seconds = [float(line) for line in out.split()]
    result = {"step_s": round(statistics.median(seconds[1:]), 2)}
    if base:
        result["teacher_tokens_per_s"] = tokens_per_s(base, before, started)
    return result


def teacher_alone(base: str, seconds: float = 30.0) -> float:
    """The busy teacher's generated tokens/s with nothing else running."""
    with BusyTeacher(base):
        before, started = generated_tokens(base), time.perf_counter()
        time.sleep(seconds)
        return tokens_per_s(base, before, started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher-url", default=os.environ.get("TEACHER_URL", "http://127.0.0.1:8011/v1"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result: dict[str, object] = {"teacher_alone_tokens_per_s": teacher_alone(args.teacher_url),
                                 "steps": args.steps, "cpus": os.cpu_count()}
    for name, spin in SPINS.items():
        alone = training(spin, args.steps, None)
        with BusyTeacher(args.teacher_url):
            beside = training(spin, args.steps, args.teacher_url)
        result[name] = {"GOMP_SPINCOUNT": int(spin), "alone": alone, "beside_busy_teacher": beside}
        print(f"{name:16} GOMP_SPINCOUNT={spin:>6}: step {alone['step_s']} s alone, "
              f"{beside['step_s']} s beside the teacher (teacher {beside['teacher_tokens_per_s']} tok/s)")
    default, ours = result["libgomp default"], result["vibetune"]
    assert isinstance(default, dict) and isinstance(ours, dict)
    result["speedup_beside_teacher"] = round(default["beside_busy_teacher"]["step_s"]
                                             / ours["beside_busy_teacher"]["step_s"], 2)
    print(f"teacher alone {result['teacher_alone_tokens_per_s']} tok/s; "
          f"training beside the teacher {result['speedup_beside_teacher']}x faster with the short spin")
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
