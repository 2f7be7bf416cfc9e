"""How close the upfront estimate (`POST /api/jobs/estimate`) comes to the real time of a job.

Submits K jobs of different sizes (the SMS spam task with a sample of its real test rows, one
`--sizes` entry each) to a running vibetune service (`make up`), one after another: for each it
first asks the estimate for the same body, then submits it, waits for it to end and compares the
estimate with the real wall time (the job's start to its end; waiting in the queue is not
estimated) and each stage's estimate with the stage's real seconds. Each job's estimate uses the
stages of the jobs before it, as the installation's own history grows. Writes
bench/results/estimate_accuracy.json (or `--out`) and prints a Markdown table; the goal is a
real/estimate ratio between 0.7 and 1.3 on the bundled CPU pair.

    python bench/estimate_accuracy.py [--url http://127.0.0.1:8000] [--api-key vt_...]
                                      [--sizes 40,100,150] [--n 30] [--seed 0]

Every request is signed with `--api-key` (default: VIBETUNE_API_KEY).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_sets import build  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "estimate_accuracy.json"
FINISHED = ("succeeded", "failed", "canceled")
#: The estimate is good enough when the real time is within this share of it, either way.
TOLERANCE = 0.3


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


def wait_for(client: httpx.Client, job_id: str, poll_s: float = 5) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in FINISHED:
            return job
        time.sleep(poll_s)


def measure(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """One job: its estimate, then its real times."""
    asked = client.post("/api/jobs/estimate", json=body)
    asked.raise_for_status()
    estimate = asked.json()
    submitted = client.post("/api/jobs", json=body)
    submitted.raise_for_status()
    job = wait_for(client, submitted.json()["id"])
    real = seconds_between(job["started_at"], job["finished_at"])
    real_stages = {s["name"]: seconds_between(s["started_at"], s["finished_at"]) for s in job["stages"]}
    ratio = round(real / estimate["total_seconds"], 3) if real and estimate["total_seconds"] else None
    return {
        "job_id": job["id"], "status": job["status"], "num_examples": body["num_examples"],
        "test_rows": len(body.get("test_set", [])), "estimate_s": estimate["total_seconds"],
        "estimate_basis": estimate["basis"], "real_s": real, "ratio_real_over_estimate": ratio,
        "within_tolerance": ratio is not None and abs(ratio - 1) <= TOLERANCE,
        "stages": [{"name": s["name"], "estimate_s": s["seconds"], "basis": s["basis"],
                    "real_s": real_stages.get(s["name"])} for s in estimate["stages"]],
    }


def table(runs: Sequence[dict[str, Any]]) -> str:
    lines = ["| examples | test rows | estimate | real | real/estimate | basis |",
             "| ---: | ---: | ---: | ---: | ---: | --- |"]
    for run in runs:
        real = "–" if run["real_s"] is None else f"{run['real_s'] / 60:.1f} min"
        ratio = "–" if run["ratio_real_over_estimate"] is None else f"{run['ratio_real_over_estimate']:.2f}"
        lines.append(f"| {run['num_examples']} | {run['test_rows']} | {run['estimate_s'] / 60:.1f} min | {real} | "
                     f"{ratio} | {run['estimate_basis']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VIBETUNE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("VIBETUNE_API_KEY"),
                        help="API key sent as `Authorization: Bearer` (default: VIBETUNE_API_KEY)")
    parser.add_argument("--sizes", default="40,100,150", help="num_examples of each job, comma-separated")
    parser.add_argument("--n", type=int, default=30, help="test rows of each job")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the test rows")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    qs = build("sms_spam", args.n, args.seed)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    runs = []
    with httpx.Client(base_url=args.url, timeout=60, headers=headers) as client:
        if client.get("/api/me").status_code == 401:
            print(f"estimate_accuracy: {args.url} refused the API key; pass --api-key or set VIBETUNE_API_KEY",
                  file=sys.stderr)
            return 2
        for size in sizes:
            run = measure(client, {**qs.body, "num_examples": size})
            runs.append(run)
            print(f"{size} examples: estimate {run['estimate_s']:.0f} s, real {run['real_s']} s "
                  f"({run['status']}, ratio {run['ratio_real_over_estimate']})", flush=True)
    result = {"set": qs.name, "sizes": sizes, "n": args.n, "seed": args.seed, "tolerance": TOLERANCE,
              "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs,
              "all_within_tolerance": all(run["within_tolerance"] for run in runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(runs))
    return 0 if result["all_within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
