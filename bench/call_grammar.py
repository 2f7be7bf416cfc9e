"""The call grammar as a lever, alone: one finished tool-calling job's tuned (and untuned) student
answers the same test rows twice, decoded freely and under the call grammar, side by side.

The job's evaluate stage already scores the students under the grammar; this bench takes the job
`bench/quality.py` ran (same set, `--n` and `--seed`, so the same test rows), downloads its model
folder through the API, and decodes each row both ways with `app.inference.generate`, the one way
a student answers. The scores (call accuracy with n and its Wilson interval, valid-call rate,
no-call accuracy) go to `bench/results/call_grammar_<set>.json`, and a Markdown table is printed.

    python bench/call_grammar.py --job <id> [--set restaurant8k_booking] [--n 30] [--seed 0]
                                 [--url http://127.0.0.1:8000] [--api-key vt_...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_sets import build  # noqa: E402

from app.cli.client import VibetuneClient  # noqa: E402
from app.inference import generate, load_student, task_answer_budget  # noqa: E402
from app.specs import Row, TaskSpec  # noqa: E402
from workers import prompts  # noqa: E402
from workers.scoring import score_answers  # noqa: E402
from workers.statistics import wilson  # noqa: E402
from workers.training.student import student_source  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _scores(expected: list[str], answers: list[str], spec: TaskSpec) -> dict[str, Any]:
    scored = score_answers(expected, answers, spec.task_type, tools=spec.tools)
    correct = round(scored["accuracy"] * len(expected))
    interval = wilson(correct, len(expected)) or [0.0, 0.0]
    return {"accuracy": scored["accuracy"], "n": len(expected), "correct": correct,
            "accuracy_ci95": [round(bound, 4) for bound in interval],
            **{k: scored.get(k) for k in ("call_accuracy", "valid_call_rate", "no_call_accuracy", "n_call",
                                          "n_no_call")}}


def _answers(folder: str, rows: list[Row], spec: TaskSpec, tuned: bool) -> dict[str, dict[str, Any]]:
    student = load_student(folder)
    budget = task_answer_budget(student.tokenizer, spec.task_type, [row.output for row in rows])
    out: dict[str, dict[str, Any]] = {}
    for mode in ("free", "grammar"):
        texts, started = [], time.perf_counter()
        for row in rows:
            chat = (spec.student_messages(row.input, row.tools) if tuned
                    else prompts.label_messages(spec.offering(row.tools), row.input))
            grammar = spec.call_grammar(row.tools) if mode == "grammar" else None
            texts.append(generate(student, chat, max_tokens=budget, grammar=grammar).text)
        scores = _scores([row.output for row in rows], texts, spec)
        out[mode] = {**scores, "seconds_per_row": round((time.perf_counter() - started) / len(rows), 2),
                     "answers": texts}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--job", required=True, help="a finished tool-calling job of bench/quality.py")
    parser.add_argument("--set", default="restaurant8k_booking")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", default=os.environ.get("VIBETUNE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("VIBETUNE_API_KEY"))
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()

    quality_set = build(args.set, n=args.n, seed=args.seed)
    with VibetuneClient(args.url, timeout=300, api_key=args.api_key) as client:
        job = client.get_job(args.job)
        spec = TaskSpec.model_validate(job["plan"])
        test_rows = quality_set.body["test_set"]
        if [r["input"] for r in test_rows] != [r["input"] for r in job["spec"].get("test_set") or test_rows]:
            raise SystemExit(f"job {args.job} was not run on {args.set} with n={args.n}, seed={args.seed}")
        rows = [Row(input=r["input"], output=r["output"], tools=r.get("tools")) for r in test_rows]
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            for item in client.artifacts(args.job):
                if item["name"].startswith("model/"):
                    client.download(item, folder)
            tuned = _answers(str(folder / "model"), rows, spec, tuned=True)
    untuned = _answers(student_source(job["spec"]["student"]), rows, spec, tuned=False)

    result = {"set": args.set, "job_id": args.job, "n": len(rows), "seed": args.seed,
              "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "base_student": untuned, "student": tuned}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"call_grammar_{args.set}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("| model | decoding | call accuracy (n) | 95% interval | valid calls | no-call accuracy | s/row |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for name, entry in (("untuned student", untuned), ("tuned student", tuned)):
        for mode in ("free", "grammar"):
            e = entry[mode]
            valid = "–" if e["valid_call_rate"] is None else f"{e['valid_call_rate']:.2f}"
            print(f"| {name} | {mode} | {e['accuracy']:.3f} ({e['correct']}/{e['n']}) | "
                  f"{e['accuracy_ci95'][0]:.2f}–{e['accuracy_ci95'][1]:.2f} | {valid} | "
                  f"{e['no_call_accuracy']:.2f} | {e['seconds_per_row']} |")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
