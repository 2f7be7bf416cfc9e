"""Jobs of each shaped task type (extraction, open-book QA, tool calling), the way a person runs
them: the body a person writes, the real API, the real default and gpu workers, the real vLLM
teacher and, for tool calling, real TRL training of the bundled student. The three are submitted
at once and share the workers; each then checks its data (the type's validation and drops by
reason) and its report (the type's scores, each with `n`).

To keep CI within its budget, only tool calling, whose answers change shape most on the way to
`/v1`, runs the whole way: its report scores all three models and its student's calls are parsed
by the official `openai` client as `tool_calls`. Extraction and QA stop after their data
(`until: data`, the teacher scored on the test set); their evaluate stage runs in process in
tests/training/test_student_stages.py and their `/v1` shapes in tests/api/test_openai_tools.py.

Quality figures are not asserted here (bench/quality.py measures them on real data)."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from app.answer_shapes import FieldSpec, check_call, check_extraction, unstated_arguments
from app.specs import QA_REFUSAL
from tests.conftest import ADMIN_KEY
from tests.support import http

JOB_SECONDS = 2400
#: Few examples: these jobs prove the path, not the quality. The epochs are the default (at least
#: 40 optimiser steps): with 3 epochs (8 steps) the student answered none of 8 of its own training
#: requests with a call in 2 of about 6 runs.
TRAINING = {"batch_size": 4}
#: Only the f16 GGUF: the whole-job test (tests/integration/test_whole_job.py) proves the quantized ones.
EXPORTS = ["f16"]
DATA_ONLY = {"num_examples": 6, "until": "data"}

BOOK_TABLE = {"type": "function", "function": {
    "name": "book_table", "description": "Book a table at the restaurant",
    "parameters": {"type": "object", "required": ["people", "date"], "properties": {
        "people": {"type": "integer", "description": "how many people"},
        "date": {"type": "string", "description": "the day of the booking"},
        "time": {"type": "string", "description": "the time of the booking"}}}}}
OPENING_HOURS = {"type": "function", "function": {
    "name": "opening_hours", "description": "Tell the opening hours of one day",
    "parameters": {"type": "object", "required": ["day"], "properties": {"day": {"type": "string"}}}}}

FIELDS = [{"name": "date", "description": "the day of the booking"},
          {"name": "party_size", "description": "how many people", "type": "integer", "span": False}]

BODIES: dict[str, dict[str, Any]] = {
    "tool_calling": {
        "task": "Book tables and tell the opening hours for a restaurant's chat assistant",
        "tools": [BOOK_TABLE, OPENING_HOURS], "num_examples": 10, "training": TRAINING, "exports": EXPORTS,
        # Trained on: the small test teacher's calls may all be dropped (unstated values), and the
        # path still needs data to train on.
        "examples": [
            {"input": "Could I get a table for 2 people on Friday?", "output": json.dumps(
                {"name": "book_table", "arguments": {"people": 2, "date": "Friday"}})},
            {"input": "What are your opening hours on Saturday?", "output": json.dumps(
                {"name": "opening_hours", "arguments": {"day": "Saturday"}})},
        ],
        "test_set": [
            {"input": "Book a table for 3 people on Sunday", "output": json.dumps(
                {"name": "book_table", "arguments": {"people": 3, "date": "Sunday"}})},
            {"input": "Are you open on Tuesday?", "output": json.dumps(
                {"name": "opening_hours", "arguments": {"day": "Tuesday"}})},
            {"input": "Thanks, that was lovely!", "output": ""},
        ],
    },
    "extraction": {
        "task": "Pull the date and the party size out of restaurant booking messages",
        "fields": FIELDS, **DATA_ONLY,
        # Trained on: the small test teacher's generation answers are sometimes all malformed.
        "examples": [{"input": "A table for 6 on Sunday, please", "output": {"date": "Sunday", "party_size": 6}},
                     {"input": "Can I book for three on Friday night?", "output": {"date": "Friday night",
                                                                                    "party_size": 3}}],
        "test_set": [
            {"input": "Hi, a table for 4 on Friday please", "output": {"date": "Friday", "party_size": 4}},
            {"input": "Could we book for two people this Saturday?", "output": {"date": "this Saturday",
                                                                                 "party_size": 2}},
            {"input": "Do you have vegan dishes?", "output": {"date": None, "party_size": None}},
        ],
    },
    "qa": {
        "task": "Answer questions about a short notice from a restaurant, using only the notice",
        "qa_mode": "open_book", **DATA_ONLY,
        "examples": [{"input": "Lunch is served from noon to three.\n\nQuestion: Until when is lunch served?",
                      "output": "until three"}],
        "test_set": [
            {"input": "We are closed on Mondays. On other days we open at noon.\n\nQuestion: When do you open?",
             "output": "at noon"},
            {"input": "Our terrace seats twenty guests.\n\nQuestion: Do you serve fish?", "output": QA_REFUSAL},
        ],
    },
}


@pytest.fixture(scope="module")
def finished(live_service) -> dict[str, dict[str, Any]]:
    """The three jobs, submitted together and run to the end: task type -> the finished job."""
    ids = {}
    api = f"{live_service.url}/api/jobs"
    for task_type, body in BODIES.items():
        response = http.post(api, json=body)
        assert response.status_code == 201, response.text
        ids[task_type] = response.json()["id"]
    deadline = time.monotonic() + JOB_SECONDS
    jobs: dict[str, dict[str, Any]] = {}
    while len(jobs) < len(ids) and time.monotonic() < deadline:
        for task_type, job_id in ids.items():
            job = http.get(f"{api}/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                jobs[task_type] = job
        time.sleep(5)
    for task_type, job_id in ids.items():
        job = jobs.get(task_type) or http.get(f"{api}/{job_id}").json()
        assert job["status"] == "succeeded", (task_type, job, live_service.output())
        jobs[task_type] = job
    return jobs


def stage_metrics(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(stage for stage in job["stages"] if stage["name"] == name)["metrics"]


def dataset(client, job: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.get(f"/api/jobs/{job['id']}/dataset").text.splitlines()]


def report(client, job: dict[str, Any]) -> dict[str, Any]:
    """The job's report: every model it scored has `accuracy` and `n`; a data job only the teacher."""
    body = client.get(f"/api/jobs/{job['id']}/report").json()
    assert body["task_type"] == job["plan"]["task_type"]
    names = ("teacher", "base_student", "student") if job["spec"]["until"] == "model" else ("teacher",)
    for name in names:
        entry = body[name]
        assert entry["n"] == len(BODIES[job["plan"]["task_type"]]["test_set"]), (name, entry)
        assert entry["accuracy"] is None or 0 <= entry["accuracy"] <= 1
    if job["spec"]["until"] == "model":
        assert body["verdict"] in ("deploy", "retune")
    else:
        assert body["student"] is None
    return body


def openai_client(live_service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_service.url}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=300)


def test_extraction_job_answers_with_the_fields(client, finished):
    job = finished["extraction"]
    assert job["plan"]["task_type"] == "extraction"
    assert [f["name"] for f in job["plan"]["fields"]] == ["date", "party_size"]
    rows = dataset(client, job)
    fields = [FieldSpec.model_validate(f) for f in FIELDS]
    assert rows
    for row in rows:
        value = json.loads(row["output"])
        assert list(value) == ["date", "party_size"], row
        checked = check_extraction(value, fields, row["input"])
        assert checked.value == value and not checked.dropped_values, row  # curate cleaned it already
    curate = stage_metrics(job, "curate")
    assert isinstance(curate["dropped"], dict) and "span_values_dropped" in curate
    teacher = report(client, job)["teacher"]
    # Keys a model invents are scored too (as false positives), so they may be listed beside these.
    assert {"date", "party_size"} <= set(teacher["fields"]) and "parse_rate" in teacher


def test_open_book_qa_job_answers_from_the_passage(client, finished):
    job = finished["qa"]
    assert job["plan"]["task_type"] == "qa" and job["plan"]["qa_mode"] == "open_book"
    rows = dataset(client, job)
    assert rows and all("\n\nQuestion: " in row["input"] and row["output"].strip() for row in rows)
    label = stage_metrics(job, "label")
    assert label["labeled"] >= sum(row["bucket"] != "seed" for row in rows)
    assert sum(row["bucket"] == "seed" for row in rows) == 2, "the seed, twice (its weight)"
    dropped = stage_metrics(job, "curate")["dropped"]
    assert set(dropped) <= {"invalid_output", "unsupported_answer", "refused_answerable", "test_overlap",
                            "seed_overlap", "duplicate", "near_duplicate", "over_budget"}, dropped
    assert "f1" in report(client, job)["teacher"]


def test_tool_calling_job_learns_the_calls(client, live_service, finished):
    job = finished["tool_calling"]
    tools = job["plan"]["tools"]
    assert [t["function"]["name"] for t in tools] == ["book_table", "opening_hours"]
    rows = dataset(client, job)
    calls = [row for row in rows if row["output"].startswith("{")]
    assert calls, "requests that need a tool are answered with calls"
    for row in calls:
        checked = check_call(row["output"], tools)
        assert checked.call is not None, (row, checked.problems)
    assert sum(row["bucket"] == "seed" for row in rows) == 2 * 2, "the seeds are trained on, twice each"
    written = [row for row in rows if "kind=" in row["bucket"]]
    for row in written:
        if not row["output"].startswith("{"):  # a reply is kept only for a request written to need no call
            assert "kind=call|" not in row["bucket"] + "|", row
    # Whether the small teacher replies instead of calling is its quality, not the path: every row
    # curate did not keep is counted by one of the type's reasons.
    curate = stage_metrics(job, "curate")
    assert set(curate["dropped"]) <= {"invalid_output", "invalid_call", "call_for_no_call_request",
                                      "no_call_for_call_request", "unstated_value", "duplicate", "near_duplicate",
                                      "test_overlap", "seed_overlap", "over_budget"}, curate["dropped"]
    assert isinstance(curate["unstated_arguments_dropped"], int), curate
    for row in calls:  # no kept call carries a free-text value its request does not state
        assert not unstated_arguments(json.loads(row["output"]), tools, row["input"]), row
    assert curate["kept"] - 2 * 2 + sum(curate["dropped"].values()) == curate["input_rows"], curate
    assert stage_metrics(job, "generate")["generated"] > 0
    scores = report(client, job)
    for name in ("teacher", "base_student", "student"):
        entry = scores[name]
        assert entry["n_call"] == 2 and entry["n_no_call"] == 1, entry
        assert {"valid_call_rate", "no_call_accuracy", "mismatches"} <= set(entry)

    # The tools are in the student's weights: a request from its own training data, with no tool
    # list, comes back as a call in OpenAI's shape when the student answers with one. (Ten examples
    # and three epochs: in two runs the student answered none of its first 3 such requests with a
    # call, so it is asked up to 8; how often it calls is bench/quality.py's business.)
    chat = openai_client(live_service)
    answered_calls = 0
    for row in calls[:8]:
        reply = chat.chat.completions.create(model=job["id"], messages=[{"role": "user", "content": row["input"]}],
                                             max_tokens=96)
        choice = reply.choices[0]
        if choice.finish_reason == "tool_calls":
            call = choice.message.tool_calls[0]
            assert choice.message.content is None and call.type == "function"
            assert check_call({"name": call.function.name, "arguments": json.loads(call.function.arguments)},
                              tools).call is not None
            answered_calls += 1
        else:
            assert check_call(choice.message.content or "", tools).call is None
            if choice.finish_reason == "stop":  # under the call grammar, an answer begun as a call is one
                assert not (choice.message.content or "").lstrip().startswith("{"), choice
    assert answered_calls, "the tuned student answers a request from its training data with a call"
    # The bundle carries the grammar for llama.cpp; the GGUF exports were scored under it.
    grammar = client.get(f"/api/jobs/{job['id']}/artifacts/call.gbnf")
    assert grammar.status_code == 200 and grammar.text.startswith("root ::= "), grammar.text[:200]
    assert '\\"name\\": \\"opening_hours\\"' in grammar.text
