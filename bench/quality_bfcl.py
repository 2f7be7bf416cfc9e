"""The BFCL v4 simple_python benchmark set (`bfcl_simple_python`), an evaluation-only set of
function-calling questions, each with its own function and BFCL's acceptable argument values.

A job has one fixed tool list (at most 20) while every BFCL question comes
with its own function, so a job takes `n` <= 20 questions with distinct function names, their
functions as its tools, and those questions as test rows. By default (`per_request`) the job
shows tools in the prompt (`tools_in_prompt`) and each test row is offered its own function alone,
as BFCL offers it; with `per_request=False` the tools are baked in and every model sees all `n`.
The expected call takes the first acceptable value of each argument in BFCL's `possible_answer`
(an argument whose first acceptable value is "" is left out: BFCL's "may be omitted"); the full
acceptable lists are in `meta` (`ground_truth`) for scoring with `acceptable_lists=True`.
`irrelevant` adds that many questions of other functions, not among the tools, expecting no call
(per request: each offered one of the job's tools, which does not fit it).
"""

from __future__ import annotations

import copy
import functools
import json
import random
from pathlib import Path
from typing import Any

from quality_set import DATA, QualitySet

from app.answer_shapes import MAX_TOOLS, bfcl_to_openai_tool, call_text, check_call

BFCL_FILES = ("bfcl_function_calling/BFCL_v4_simple_python.json",
              "bfcl_function_calling/possible_answer/BFCL_v4_simple_python.json")


def _first_acceptable(options: Any, schema: dict[str, Any], required: bool) -> tuple[bool, Any]:
    """(present, value) of one argument from its acceptable values: the first one, resolved into
    nested objects; "" first means "may be omitted", unless the argument is required (then the
    first other value)."""
    if not isinstance(options, list):
        return True, options
    values = [v for v in options if v != ""] if required else options
    if not values or values[0] == "":
        return False, None
    return True, _resolve(values[0], schema)


def _resolve(value: Any, schema: dict[str, Any]) -> Any:
    # A nested object's values are acceptable lists again (BFCL), so are those of objects in a list.
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out = {}
        for key, options in value.items():
            present, chosen = _first_acceptable(options, props.get(key) or {}, key in required)
            if present:
                out[key] = chosen
        return out
    if isinstance(value, list):
        items = schema.get("items")
        items = items if isinstance(items, dict) else {}
        return [_resolve(item, items) if isinstance(item, dict) else item for item in value]
    return value


def bfcl_expected_call(ground_truth: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    """The call of one BFCL ground truth (`{name: {arg: [acceptable, ...]}}`) for its OpenAI `tool`:
    each argument's first acceptable value (inside nested objects too); an argument whose first
    value is "" (BFCL: may be omitted) is left out, unless the tool requires it."""
    (name, arguments), = ground_truth.items()
    return {"name": name, "arguments": _resolve(arguments, tool["function"]["parameters"])}


def bfcl_questions(data: Path = DATA) -> list[dict[str, Any]]:
    """BFCL simple_python as `{id, question, tool, ground_truth, call}`, questions whose expected
    call fails its own tool's schema left out (a fresh copy each call; the files are read once)."""
    return copy.deepcopy(_bfcl_questions(data))


@functools.lru_cache(maxsize=4)
def _bfcl_questions(data: Path) -> list[dict[str, Any]]:
    answers = {}
    for line in (data / BFCL_FILES[1]).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            answers[record["id"]] = record["ground_truth"]
    out = []
    for line in (data / BFCL_FILES[0]).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        turns = record["question"][0]
        truth = answers.get(record["id"])
        if len(record["function"]) != 1 or len(turns) != 1 or not truth or len(truth) != 1:
            continue
        tool = bfcl_to_openai_tool(record["function"][0])
        call = bfcl_expected_call(truth[0], tool)
        if check_call(call, [tool]).problems:
            continue
        out.append({"id": record["id"], "question": turns[0]["content"], "tool": tool, "ground_truth": truth[0],
                    "call": call})
    return out


def bfcl_simple_python(n: int = 20, seed: int = 0, data: Path = DATA, irrelevant: int = 0,
                       per_request: bool = True) -> QualitySet:
    questions = bfcl_questions(data)
    rng = random.Random(seed)
    rng.shuffle(questions)
    by_name: dict[str, dict[str, Any]] = {}
    for q in questions:
        by_name.setdefault(q["tool"]["function"]["name"], q)
    chosen = list(by_name.values())[:min(n, MAX_TOOLS)]
    names = {q["tool"]["function"]["name"] for q in chosen}
    used = {q["id"] for q in chosen}
    others = [q for q in questions if q["tool"]["function"]["name"] not in names and q["id"] not in used]
    off_tools = others[:irrelevant]
    test_set = ([{"input": q["question"], "output": call_text(q["call"])} for q in chosen]
                + [{"input": q["question"], "output": ""} for q in off_tools])
    if per_request:
        offered = ([[q["tool"]["function"]["name"]] for q in chosen]
                   + [[rng.choice(sorted(names))] for _ in off_tools])
        test_set = [{**row, "tools": tools} for row, tools in zip(test_set, offered, strict=True)]
    meta = ([{"source": BFCL_FILES[0], "id": q["id"], "ground_truth": q["ground_truth"]} for q in chosen]
            + [{"source": BFCL_FILES[0], "id": q["id"], "ground_truth": None} for q in off_tools])
    body = {"task": "Answer each request by calling the one function among the given tools that does what it asks, "
                    "with the argument values the request gives",
            "task_type": "tool_calling", "tools": [q["tool"] for q in chosen], "test_set": test_set,
            "tools_in_prompt": per_request}
    notes = (f"{len(chosen)} questions with distinct functions, their functions as the job's tools (at most "
             f"{MAX_TOOLS}); "
             + ("tools in the prompt, each question offered its own function alone; " if per_request else
                "tools baked in, every question offered all of them; ")
             + "expected call = first acceptable value per argument (first value '' = omitted); "
             "acceptable lists in meta.ground_truth"
             + (f"; {len(off_tools)} questions of other functions expecting no call" if off_tools else ""))
    return QualitySet("bfcl_simple_python", body, meta, " + ".join(BFCL_FILES), notes)
