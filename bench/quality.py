"""Student quality: whole jobs from a plain task prompt, scored on real held-out test sets.

For each set (`bench/quality_sets.py`: classification, extraction, QA and tool calling) it submits
one job to a running vibetune service (`make up`) with only a one-line task, the set's labels /
fields / tools and a sample of the data set's *test* split as `test_set` (never trained on: the
teacher invents the training data), waits for it, and reports teacher, untuned student and tuned
student scores with n and 95% intervals (Wilson for accuracy, a percentile bootstrap over the test
rows for F1), the student/teacher ratio, the verdict and the wall time. Each set's results go to
`bench/results/quality_<set>.json`; a Markdown table row per set is printed.
Target: tuned student >= 0.9x teacher and well above the untuned student.

    python bench/quality.py [--url http://127.0.0.1:8000] [--api-key vt_...]
                            [--set sst2,banking77,tweeteval] [--n 60] [--num-examples 150] [--seed 0]
                            [--banking-labels 6] [--irrelevant 0] [--tools-baked-in] [--dry-run]
                            [--seeds 1] [--first-seed 0] [--real-inputs 0] [--examples 0] [--tag NAME]
                            [--exports f16,q8_0,q5_k_m,q4_k_m] [--results-dir bench/results]

Sets: sst2, banking77, tweeteval (classification), restaurant8k_extraction, wnut17_extraction
(extraction), pubmedqa (qa), restaurant8k_booking, bfcl_simple_python (tool_calling); `--set all`
runs every one. `--n` is the number of test rows (default 60; bfcl_simple_python: 20, its cap, one
question per tool). `--dry-run` builds and validates the job bodies and prints what they hold,
with no service. `--exports` asks for those GGUF files; each result then holds every file's
score in llama.cpp (`exports`), the chat-format check and the cost table, and a second Markdown
table, one row per file, is printed.

`--examples N` gives N labelled rows of the set's *train* split as the person's seed examples
(restaurant8k and WNUT-17; the booking set's are half calls, half messages needing none answered
with a reply); `--real-inputs N` imports N unlabeled train utterances (restaurant8k); `--tag`
names the results file `quality_<set>_<tag>.json`.

Every request is signed with `--api-key` (default: VIBETUNE_API_KEY), e.g. the service's
VIBETUNE_ADMIN_KEY or a key an admin made with `vibetune keys create`; the jobs are its owner's.

banking77 has 77 intents; `--banking-labels` keeps the first N (test rows of those only),
since a small CPU teacher labels one example per label token budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_rows import EXPORTS_HEADER, MODELS, TABLE_HEADER, export_rows, markdown_row, spread_row  # noqa: E402
from quality_set import QualitySet  # noqa: E402
from quality_sets import SETS, build, summary  # noqa: E402

from workers.score_intervals import f1_metric  # noqa: E402
from workers.scoring import score_calls  # noqa: E402
from workers.statistics import bootstrap_interval as bootstrap  # noqa: E402
from workers.statistics import wilson  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------ scores


#: Per task type: the report keys kept for each model.
KEPT = {
    "classification": ("macro_f1", "per_label"),
    "extraction": ("parse_rate", "macro_f1", "micro", "fields"),
    "qa": ("f1", "judge"),
    "tool_calling": ("call_accuracy", "valid_call_rate", "no_call_accuracy", "n_call", "n_no_call"),
}


def model_scores(entry: dict[str, Any] | None, task_type: str, predictions: list[dict[str, Any]] | None,
                 name: str, seed: int) -> dict[str, Any] | None:
    """One model's scores from the job report, with intervals (F1 from the per-row predictions)."""
    if entry is None:
        return None
    n, correct = int(entry.get("n") or 0), int(entry.get("correct") or 0)
    out: dict[str, Any] = {"accuracy": entry.get("accuracy"), "n": n, "correct": correct,
                           "accuracy_ci95": wilson(correct, n)}
    out.update({k: entry[k] for k in KEPT.get(task_type, ()) if k in entry})
    if task_type == "extraction" and isinstance(entry.get("micro"), dict):
        out["micro_f1"] = entry["micro"].get("f1")
    if task_type in ("extraction", "qa") and predictions:
        expected = [row["expected"] for row in predictions]
        metric = f1_metric(task_type, expected, [row.get(name) for row in predictions])
        key = "micro_f1" if task_type == "extraction" else "f1"
        whole = metric(list(range(len(predictions))))
        out[f"{key}_rescored"] = None if whole is None else round(whole, 4)
        out[f"{key}_ci95"] = bootstrap(metric, len(predictions), seed=seed)
    for extra in ("model", "latency_ms", "size_bytes", "free_generation"):
        if extra in entry:
            out[extra] = entry[extra]
    return out


def _casefold_json(value: Any) -> Any:
    """A JSON value with every key and string lower-cased (the predictions artifact lower-cases
    free-form answers, tool calls included, so they are compared case-insensitively)."""
    return json.loads(json.dumps(value, ensure_ascii=False).lower())


def bfcl_acceptable(qs: QualitySet, predictions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """BFCL's own rule on the per-row predictions: each argument against its whole list of
    acceptable values (`possible_answer`), not just the first, compared case-insensitively."""
    if len(predictions) != len(qs.meta) or not all("ground_truth" in m for m in qs.meta):
        return None
    expected = [_casefold_json(m["ground_truth"]) if m["ground_truth"] else "" for m in qs.meta]
    tools = _casefold_json(qs.body["tools"])
    out: dict[str, Any] = {"rule": "BFCL acceptable lists, case-insensitive, from the predictions artifact"}
    for name in MODELS:
        predicted = [None if row.get(name) is None else str(row[name]).lower() for row in predictions]
        scores = score_calls(expected, predicted, tools, acceptable_lists=True)
        out[name] = {"accuracy": scores["accuracy"], "n": scores["n"], "correct": scores["correct"],
                     "accuracy_ci95": wilson(scores["correct"], scores["n"])}
    return out


# ------------------------------------------------------------------------------ the service


def run_job(client: httpx.Client, body: dict[str, Any], poll_s: float = 5) -> dict[str, Any]:
    response = client.post("/api/jobs", json=body)
    if response.status_code == 422:
        raise ValueError(f"the service refused the job: {response.text[:2000]}")
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(poll_s)


def fetch_predictions(client: httpx.Client, job_id: str) -> list[dict[str, Any]] | None:
    """Every row of the job's predictions (expected and each model's normalised answer), or None."""
    rows: list[dict[str, Any]] = []
    while True:
        response = client.get(f"/api/jobs/{job_id}/predictions", params={"limit": 500, "offset": len(rows)})
        if response.status_code != 200:
            return None
        page = response.json()
        rows.extend(page["items"])
        if not page["items"] or len(rows) >= page["total"]:
            return rows


def stage_seconds(job: dict[str, Any]) -> dict[str, float]:
    out = {}
    for stage in job.get("stages", []):
        if stage.get("started_at") and stage.get("finished_at"):
            started = datetime.fromisoformat(stage["started_at"])
            finished = datetime.fromisoformat(stage["finished_at"])
            out[stage["name"]] = round((finished - started).total_seconds(), 1)
    return out


def git_commit() -> str | None:
    """The commit of the code measured (None outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def measure(client: httpx.Client, qs: QualitySet, num_examples: int, seed: int, training_seed: int = 0,
            curation: dict[str, Any] | None = None, exports: list[str] | None = None,
            training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the set's job (its data made with `training_seed`, with these curation and training
    options) and gather its results (what goes to quality_<set>[_s<seed>].json)."""
    started = time.monotonic()
    body = {**qs.body, "num_examples": num_examples, "training": {**(training or {}), "seed": training_seed},
            **({"curation": curation} if curation else {}), **({"exports": exports} if exports else {})}
    job = run_job(client, body)
    result: dict[str, Any] = {
        "set": qs.name, "task_type": qs.task_type, "task": qs.body["task"], "source": qs.source, "notes": qs.notes,
        "n": len(qs.rows), "num_examples": num_examples, "seed": seed, "training_seed": training_seed,
        "options": {"training": body["training"], "curation": curation or {},
                    "real_inputs": len(qs.body.get("inputs") or []),
                    "seed_examples": len(qs.body.get("examples") or [])}, "git_commit": git_commit(),
        "job_id": job["id"], "status": job["status"], "error": job.get("error"),
        "warnings": job.get("warnings") or [], "wall_s": round(time.monotonic() - started, 1),
        "stages_s": stage_seconds(job), "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if job["status"] == "succeeded" and (job.get("spec") or {}).get("until") == "data":
        # Curation held the data before training (`label_short`): a result, and not a trained student.
        result["status"] = "held"
    if result["status"] != "succeeded":
        return result
    report = client.get(f"/api/jobs/{job['id']}/report").json()
    predictions = fetch_predictions(client, job["id"])
    if predictions is not None and len(predictions) != len(qs.rows):
        predictions = None  # not aligned with the test set as sent: no per-row rescoring
    result.update({
        "models": {name: model_scores(report.get(name), qs.task_type, predictions, name, seed) for name in MODELS},
        "ratio": report.get("ratio"), "verdict": report.get("verdict"), "reference": report.get("reference"),
        "verdict_reason": report.get("verdict_reason"), "closed": report.get("closed"),
        "correct": {name: [bool(row["correct"][name]) for row in predictions] for name in MODELS}
        if predictions is not None and all("correct" in row for row in predictions) else None,
        "exports": report.get("exports"), "recommended_export": report.get("recommended_export"),
        "chat_format_check": report.get("chat_format_check"), "costs": report.get("costs"),
    })
    if qs.name == "bfcl_simple_python" and predictions is not None:
        result["bfcl_acceptable"] = bfcl_acceptable(qs, predictions)
    return result


def validate(qs: QualitySet, num_examples: int) -> str:
    """'valid', or why the service would refuse the body (checked with the API's own model)."""
    from pydantic import ValidationError

    from app.schemas import JobCreate

    try:
        JobCreate.model_validate({**qs.body, "num_examples": num_examples})
    except ValidationError as exc:
        return f"invalid: {exc}"
    return "valid"


#: The sets with a train split to draw `--real-inputs` from.
REAL_INPUT_SETS = ("restaurant8k_extraction", "restaurant8k_booking")
#: The sets with a labelled train split to draw `--examples` from.
EXAMPLE_SETS = ("restaurant8k_extraction", "restaurant8k_booking", "wnut17_extraction")


def set_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The options each set's builder takes from the command line."""
    options: dict[str, dict[str, Any]] = {
        "banking77": {"keep": args.banking_labels},
        "bfcl_simple_python": {"irrelevant": args.irrelevant, "per_request": not args.tools_baked_in}}
    for name in REAL_INPUT_SETS if args.real_inputs else ():
        options.setdefault(name, {})["real_inputs"] = args.real_inputs
    for name in EXAMPLE_SETS if args.examples else ():
        options.setdefault(name, {})["examples"] = args.examples
    return options


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, checked: known sets, and each set's option only where the set has its data."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VIBETUNE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("VIBETUNE_API_KEY"),
                        help="API key sent as `Authorization: Bearer` (default: VIBETUNE_API_KEY)")
    parser.add_argument("--set", "--sets", dest="sets", default="sst2,banking77,tweeteval",
                        help=f"comma-separated sets, or 'all': {', '.join(SETS)}")
    parser.add_argument("--n", "--test-rows", dest="n", type=int, default=None,
                        help="test rows per set (default 60; bfcl_simple_python 20, at most 20)")
    parser.add_argument("--num-examples", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the test rows")
    parser.add_argument("--banking-labels", type=int, default=6)
    parser.add_argument("--irrelevant", type=int, default=0,
                        help="bfcl_simple_python: also this many questions of functions not among the tools "
                             "(expected: no call)")
    parser.add_argument("--tools-baked-in", action="store_true",
                        help="bfcl_simple_python: learn the tools into the weights and offer every model all of them "
                             "(default: tools in the prompt, each question offered its own function)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per set, with training (data) seeds 0..N-1; each run gets its own results file "
                             "(quality_<set>_s<seed>.json) and the table shows mean and spread")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first training seed: --first-seed 1 --seeds 1 adds seed 1 to a set's seed-0 run")
    parser.add_argument("--curation", type=json.loads, default=None,
                        help='curation options for every job, as JSON (e.g. \'{"votes": 1}\'; default: the service\'s)')
    parser.add_argument("--real-inputs", type=int, default=0,
                        help="restaurant8k sets: import this many unlabeled utterances of the train split as the "
                             "person's real inputs (`inputs`)")
    parser.add_argument("--examples", type=int, default=0,
                        help="restaurant8k and WNUT-17 sets: give this many labelled rows of the train split as the "
                             "person's seed examples (`examples`)")
    parser.add_argument("--tag", default="", help="suffix of the results file names (quality_<set>_<tag>.json)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--exports", default=None, help="comma separated GGUF exports each job makes and re-scores")
    parser.add_argument("--dry-run", action="store_true", help="build and validate the job bodies; no service")
    args = parser.parse_args(argv)
    names = list(SETS) if args.sets == "all" else [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [name for name in names if name not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; one of {', '.join(SETS)}")
    if args.real_inputs and (unreal := [name for name in names if name not in REAL_INPUT_SETS]):
        parser.error(f"--real-inputs: only {', '.join(REAL_INPUT_SETS)} have a train split to draw from, not {unreal}")
    if args.examples and (unlabelled := [name for name in names if name not in EXAMPLE_SETS]):
        parser.error(f"--examples: only {', '.join(EXAMPLE_SETS)} have a labelled train split here, not {unlabelled}")
    args.names = names
    return args


def results_path(args: argparse.Namespace, qs: QualitySet, training_seed: int) -> Path:
    """`quality_<set>[_<tag>][_s<seed>].json`: the seed suffix whenever the run is one of several."""
    several = args.seeds > 1 or args.first_seed > 0
    suffix = (f"_{args.tag}" if args.tag else "") + (f"_s{training_seed}" if several else "")
    return args.results_dir / f"quality_{qs.name}{suffix}.json"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = set_options(args)
    sets = [build(name, args.n, args.seed, **options.get(name, {})) for name in args.names]
    if args.dry_run:
        for qs in sets:
            print(json.dumps({**summary(qs), "body": validate(qs, args.num_examples),
                              "first_row": qs.rows[0] if qs.rows else None}, indent=2, ensure_ascii=False))
        return 0
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=args.url, timeout=60, headers=headers) as client:
        me = client.get("/api/me")
        if me.status_code == 401:
            print(f"quality: {args.url} refused the API key ({me.json()['error']['message']}); "
                  "pass --api-key or set VIBETUNE_API_KEY", file=sys.stderr)
            return 2
        me.raise_for_status()
        run_sets(client, sets, args)
    return 0


def run_sets(client: httpx.Client, sets: Sequence[QualitySet], args: argparse.Namespace) -> None:
    """Each set's job per training seed, its results file written and its table row printed as it ends."""
    print(TABLE_HEADER, flush=True)
    all_runs: list[dict[str, Any]] = []
    for qs in sets:
        runs = []
        for training_seed in range(args.first_seed, args.first_seed + args.seeds):
            try:
                result = measure(client, qs, args.num_examples, args.seed, training_seed, args.curation,
                                 exports=args.exports.split(",") if args.exports else None)
            except ValueError as exc:
                print(f"| {qs.name} | {qs.task_type} | {len(qs.rows)} | {exc} |", flush=True)
                break
            path = results_path(args, qs, training_seed)
            path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(markdown_row(result), flush=True)
            runs.append(result)
        if len(runs) > 1:
            print(spread_row(runs), flush=True)
        all_runs.extend(runs)
    if any(run.get("exports") for run in all_runs):
        print("\n" + EXPORTS_HEADER)
        for run in all_runs:
            print("\n".join(export_rows(run)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
