"""Student quality: whole jobs from a plain task prompt, scored on real held-out test sets.

For each data set it submits one job to a running vibetune service (`make up`) with only a
task description, the label names and a sample of the data set's *test* split as `test_set`
(never trained on: the teacher invents the training data), waits for it, and prints teacher,
untuned student and tuned student accuracy, the student/teacher ratio, the verdict and the
wall time. Target: tuned student >= 0.9x teacher and well above the untuned student.

    python bench/quality.py [--url http://127.0.0.1:8000] [--api-key vt_...] [--sets sst2,banking77,tweeteval]
                            [--num-examples 150] [--test-rows 60] [--banking-labels 6]

Every request is signed with `--api-key` (default: VIBETUNE_API_KEY), e.g. the service's
VIBETUNE_ADMIN_KEY or a key an admin made with `vibetune keys create`; the jobs are its owner's.

banking77 has 77 intents; `--banking-labels` keeps the first N (test rows of those only),
since a small CPU teacher labels one example per label token budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx

DATA = Path(os.environ.get("VIBETUNE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def sst2() -> tuple[str, list[str], list[dict]]:
    labels = ["negative", "positive"]
    with (DATA / "sst2" / "test_labeled.tsv").open(encoding="utf-8", newline="") as f:
        rows = [
            {"input": r["sentence"].strip(), "output": labels[int(r["label"])]}
            for r in csv.DictReader(f, delimiter="\t")
        ]
    return "Decide whether a movie review sentence is positive or negative", labels, rows


def banking77(keep: int) -> tuple[str, list[str], list[dict]]:
    labels = json.loads((DATA / "banking77" / "categories.json").read_text())[:keep]
    with (DATA / "banking77" / "test.csv").open(encoding="utf-8", newline="") as f:
        rows = [{"input": r["text"], "output": r["category"]} for r in csv.DictReader(f) if r["category"] in labels]
    return "Sort online banking customer messages by what the customer needs help with", labels, rows


def tweeteval() -> tuple[str, list[str], list[dict]]:
    labels = ["negative", "neutral", "positive"]
    folder = DATA / "tweeteval_sentiment"
    texts = (folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
    golds = (folder / "test_labels.txt").read_text(encoding="utf-8").split()
    rows = [{"input": t.strip(), "output": labels[int(g)]} for t, g in zip(texts, golds, strict=True)]
    return "Classify the sentiment of a tweet as negative, neutral or positive", labels, rows


def balanced_sample(rows: list[dict], labels: list[str], n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    per_label = {label: [r for r in rows if r["output"] == label] for label in labels}
    for group in per_label.values():
        rng.shuffle(group)
    longest = max(len(g) for g in per_label.values())
    sample = [group[i] for i in range(longest) for group in per_label.values() if i < len(group)]
    return sample[:n]


def run_job(client: httpx.Client, task: str, labels: list[str], test_set: list[dict], num_examples: int) -> dict:
    response = client.post("/api/jobs", json={"task": task, "labels": labels, "test_set": test_set,
                                              "num_examples": num_examples})
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VIBETUNE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("VIBETUNE_API_KEY"),
                        help="API key sent as `Authorization: Bearer` (default: VIBETUNE_API_KEY)")
    parser.add_argument("--sets", default="sst2,banking77,tweeteval")
    parser.add_argument("--num-examples", type=int, default=150)
    parser.add_argument("--test-rows", type=int, default=60)
    parser.add_argument("--banking-labels", type=int, default=6)
    args = parser.parse_args()
    loaders = {"sst2": sst2, "banking77": lambda: banking77(args.banking_labels), "tweeteval": tweeteval}
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with httpx.Client(base_url=args.url, timeout=60, headers=headers) as client:
        me = client.get("/api/me")
        if me.status_code == 401:
            print(f"quality: {args.url} refused the API key ({me.json()['error']['message']}); "
                  "pass --api-key or set VIBETUNE_API_KEY", file=sys.stderr)
            return 2
        me.raise_for_status()
        print(f"{'set':<10} {'teacher':>8} {'untuned':>8} {'tuned':>8} {'ratio':>6} {'verdict':>8} {'minutes':>8}")
        for name in args.sets.split(","):
            task, labels, rows = loaders[name]()
            started = time.monotonic()
            job = run_job(client, task, labels, balanced_sample(rows, labels, args.test_rows), args.num_examples)
            minutes = (time.monotonic() - started) / 60
            if job["status"] != "succeeded":
                print(f"{name:<10} job {job['id']} {job['status']}: {job.get('error')}")
                continue
            report = client.get(f"/api/jobs/{job['id']}/report").json()
            t, b, s = (report[k]["accuracy"] for k in ("teacher", "base_student", "student"))
            print(f"{name:<10} {t:>8.3f} {b:>8.3f} {s:>8.3f} {s / t if t else float('nan'):>6.2f} "
                  f"{report['verdict']:>8} {minutes:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
