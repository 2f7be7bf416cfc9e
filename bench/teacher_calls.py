"""What curation makes of the teacher's tool calls: the teacher's own calls on real test requests,
scored as they come and again after curate's check for invented values, side by side.

A student learns the calls curation keeps, so the figure that bounds it is not the teacher's raw
call accuracy but how often a kept call is right. For each tool-calling set of
`bench/quality_sets.py` the teacher answers every test input the way the label stage asks it
(`workers.labelling.label_rows`: the call schema that names every argument, or a reply), then:

* raw: BFCL-style scores of those answers (`workers.scoring.score_calls`);
* curated: each call through `app.answer_shapes.stated_call`, as curate does (free-text values
  the request does not state left out; a call whose required value is unstated is dropped):
  the share of calls kept, and the call accuracy of the kept calls on requests that need one.

Accuracies carry n and a 95% Wilson interval. Results go to `bench/results/teacher_calls.json`.

    TEACHER_URL=http://127.0.0.1:8011/v1 python bench/teacher_calls.py [--set restaurant8k_booking,...] [--n 30]

The teacher is any OpenAI-compatible server (`TEACHER_URL`, `TEACHER_MODEL`; default the bundled
one at port 8011, which `make up` starts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import wilson  # noqa: E402
from quality_sets import build  # noqa: E402

from app.answer_shapes import call_text, stated_call, validate_tools  # noqa: E402
from app.specs import Row, TaskSpec, TaskType  # noqa: E402
from workers.bundled_models import TEACHER  # noqa: E402
from workers.labelling import answers_or_none, label_rows  # noqa: E402
from workers.scoring import parse_call, score_calls  # noqa: E402
from workers.teacher import Teacher, TeacherConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "teacher_calls.json"
TOOL_SETS = ("restaurant8k_booking", "bfcl_simple_python")


def curated(answer: str | None, request: str, tools: list[dict[str, Any]]) -> tuple[str | None, int]:
    """An answer as curate would keep it: (the answer, or None when the row is dropped; the
    number of argument values left out)."""
    call = parse_call(answer)
    if call is None:
        return answer, 0
    stated, unstated = stated_call(call, tools, request)
    return (None if stated is None else call_text(stated)), len(unstated)


def _accuracy(correct: int, n: int) -> dict[str, Any]:
    return {"accuracy": round(correct / n, 4) if n else None, "correct": correct, "n": n,
            "accuracy_ci95": wilson(correct, n)}


def measure(config: TeacherConfig, name: str, n: int | None) -> dict[str, Any]:
    qs = build(name, n)
    teacher = Teacher(config)  # one client per event loop: its connections belong to the loop
    tools = validate_tools(qs.body["tools"])
    spec = TaskSpec(task=qs.body["task"], task_type=TaskType.TOOL_CALLING, tools=tools)
    rows = qs.rows
    started = time.monotonic()
    results = asyncio.run(label_rows(teacher, spec, [Row(input=r["input"], output=r["output"]) for r in rows]))
    failed = [f"{type(r).__name__}: {r}"[:200] for r in results if isinstance(r, BaseException)]
    answers = answers_or_none(results)
    seconds = round(time.monotonic() - started, 1)
    expected = [r["output"] for r in rows]
    raw = score_calls(expected, answers, tools)
    kept_expected, kept_answers, dropped_rows, dropped_values = [], [], 0, 0
    for row, answer in zip(rows, answers, strict=True):
        cleaned, left_out = curated(answer, row["input"], tools)
        dropped_values += left_out
        if cleaned is None:
            dropped_rows += 1
            continue
        kept_expected.append(row["output"])
        kept_answers.append(cleaned)
    kept = score_calls(kept_expected, kept_answers, tools)
    calls_answered = sum(parse_call(a) is not None for a in answers)
    return {
        "set": name, "n": len(rows), "n_call": raw["n_call"], "teacher_seconds": seconds,
        "malformed_answers": len(failed), "malformed_examples": failed[:3],
        "raw": {"call": _accuracy(round((raw["call_accuracy"] or 0) * raw["n_call"]), raw["n_call"]),
                "all_rows": _accuracy(raw["correct"], raw["n"]), "no_call_accuracy": raw["no_call_accuracy"],
                "mismatches": raw["mismatches"][:10]},
        "curated": {"calls_answered": calls_answered, "calls_dropped": dropped_rows,
                    "values_left_out": dropped_values,
                    "kept_call": _accuracy(round((kept["call_accuracy"] or 0) * kept["n_call"]), kept["n_call"]),
                    "kept_all_rows": _accuracy(kept["correct"], kept["n"])},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--set", "--sets", dest="sets", default=",".join(TOOL_SETS))
    parser.add_argument("--n", type=int, default=None, help="test rows per set (quality_sets' default when left out)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    config = TeacherConfig(base_url=os.environ.get("TEACHER_URL", "http://127.0.0.1:8011/v1"),
                           model=os.environ.get("TEACHER_MODEL", TEACHER.name), silence_timeout=300)
    results = [measure(config, name.strip(), args.n) for name in args.sets.split(",") if name.strip()]
    print("| set | n calls | teacher call accuracy | calls kept by curation | kept calls right | values left out |")
    print("| --- | ---: | --- | ---: | --- | ---: |")
    for r in results:
        raw, cur = r["raw"]["call"], r["curated"]["kept_call"]
        print(f"| {r['set']} | {r['n_call']} | {raw['accuracy']} {raw['accuracy_ci95']} | "
              f"{cur['n']} of {r['n_call']} | {cur['accuracy']} {cur['accuracy_ci95']} | "
              f"{r['curated']['values_left_out']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
