"""The per-type logic of the job body and the teacher stages (pure: no teacher, no database):
fields, tools and qa_mode in the body, the plan that keeps them, the generation kinds, the
labelling prompts and curation's checks with their drop reasons."""

import json

import pytest
from pydantic import ValidationError

from app.answer_shapes import FieldSpec, call_schema, validate_tools
from app.api.views import job_warnings
from app.schemas import JobCreate
from app.specs import QA_REFUSAL, Row, TaskSpec, TaskType, is_refusal
from workers import answered_examples, prompts
from workers.generation import input_kinds, plan_buckets
from workers.row_checks import check_row
from workers.stages.curate import EXAMPLES_PER_TOOL, tool_coverage_warnings
from workers.stages.plan import build_task_spec
from workers.stages.teacher_check import unseen

BOOK = {"type": "function", "function": {"name": "book_table", "description": "Book a table", "parameters": {
    "type": "object", "required": ["people"], "properties": {"people": {"type": "integer"},
                                                             "date": {"type": "string"}}}}}
HOURS = {"type": "function", "function": {"name": "hours", "parameters": {
    "type": "object", "properties": {"day": {"type": "string"}}}}}
SPREAD = {"topics": ["dinner"], "styles": ["plain"], "lengths": ["short"]}


def error_text(**body) -> str:
    with pytest.raises(ValidationError) as info:
        JobCreate(**body)
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in info.value.errors())


def test_fields_in_any_of_three_forms_make_an_extraction_job():
    as_text = JobCreate(task="bookings", fields="date:the day,party_size:people:integer").to_spec()
    as_list = JobCreate(task="bookings", fields=[{"name": "date", "description": "the day"},
                                                 {"name": "party_size", "description": "people",
                                                  "type": "integer"}]).to_spec()
    schema = {"type": "object", "properties": {"date": {"type": "string", "description": "the day"},
                                               "party_size": {"type": "integer", "description": "people"}}}
    as_schema = JobCreate(task="bookings", fields=schema).to_spec()
    assert as_text.task_type == as_list.task_type == as_schema.task_type == TaskType.EXTRACTION
    assert [(f.name, f.type) for f in as_text.fields] == [("date", "string"), ("party_size", "integer")]
    assert [f.name for f in as_list.fields] == [f.name for f in as_schema.fields] == ["date", "party_size"]


def test_shapes_must_fit_the_task_type():
    assert "`fields` are for extraction tasks, not qa" in error_text(task="t", task_type="qa", fields="date")
    assert "needs `tools`" in error_text(task="t", task_type="tool_calling")
    assert "`qa_mode` is for qa tasks" in error_text(task="t", task_type="extraction", qa_mode="open_book")
    assert "duplicate" in error_text(task="t", fields="date,date")
    assert "labels are only for classification tasks, not extraction" in error_text(
        task="t", labels=["a", "b"], fields="date")


def test_bad_tools_are_refused_with_their_place():
    message = error_text(task="t", tools=[BOOK, {**BOOK}])
    assert "tools.1.function.name" in message and "duplicate tool name 'book_table'" in message
    assert "at most 20 tools" in error_text(task="t", tools=[
        {"type": "function", "function": {"name": f"f{i}"}} for i in range(21)])


def test_expected_outputs_are_checked_per_type():
    ok = JobCreate(task="t", tools=[BOOK], test_set=[
        {"input": "a table for 2", "output": {"name": "book_table", "arguments": {"people": 2}}},
        {"input": "hello", "output": None}, {"input": "thanks", "output": ""}]).to_spec()
    assert json.loads(ok.test_set[0].output) == {"name": "book_table", "arguments": {"people": 2}}
    assert ok.test_set[1].output == ok.test_set[2].output == ""
    assert "missing required argument 'people'" in error_text(task="t", tools=[BOOK], test_set=[
        {"input": "book", "output": '{"name": "book_table", "arguments": {}}'}])
    assert "test_set.0.output: must be the JSON object" in error_text(task="t", fields="date", test_set=[
        {"input": "friday", "output": "friday"}])
    assert "unknown fields ['time']" in error_text(task="t", fields="date", test_set=[
        {"input": "friday", "output": {"date": "friday", "time": "7"}}])
    assert "must not be blank" in error_text(task="t", task_type="qa", test_set=[{"input": "q", "output": " "}])


def test_the_plan_keeps_the_persons_fields_tools_and_qa_mode():
    fields = JobCreate(task="bookings", fields="date,party_size:people:integer").to_spec()
    plan = build_task_spec(fields, {"task_type": "qa", "output_fields": ["ignored"], "instruction": "Extract."})
    assert plan.task_type == TaskType.EXTRACTION and plan.output_fields == ["date", "party_size"]
    assert plan.extraction_fields[1].type == "integer"
    proposed = build_task_spec(JobCreate(task="bookings", task_type="extraction").to_spec(),
                               {"output_fields": ["Party Size", "date", "party size"]})
    assert proposed.output_fields == ["party_size", "date"]
    tools = build_task_spec(JobCreate(task="book", tools=[BOOK]).to_spec(), {})
    assert tools.tools == validate_tools([BOOK]) and tools.task_type == TaskType.TOOL_CALLING
    qa = build_task_spec(JobCreate(task="answer", qa_mode="open_book").to_spec(), {"qa_mode": "open_book"})
    assert qa.qa_mode == "open_book"
    unsure = build_task_spec(JobCreate(task="answer", task_type="qa").to_spec(), {"qa_mode": "?"})
    assert unsure.qa_mode == "closed_book"


def test_generation_kinds_take_turns_per_type():
    tools = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([BOOK, HOURS]), **SPREAD)
    kinds = input_kinds(tools)
    assert {"kind": "no_call"} in kinds
    # Requests for a tool with optional values state them all, or (as often) only some of them.
    assert [k for k in kinds if k.get("tool") == "book_table" and k["kind"] == "call"] == [
        {"kind": "call", "tool": "book_table"}, {"kind": "call", "tool": "book_table", "values": "some"}]
    some = prompts.generate_messages(tools, {**SPREAD, "kind": "call", "tool": "book_table", "values": "some",
                                             "topic": "dinner", "style": "plain", "length": "short"}, [], 5)
    assert "every value it needs (people) but leaving out some or all of the others (date)" in some[1]["content"]
    optional_some = {**SPREAD, "kind": "call", "tool": "hours", "values": "some", "topic": "dinner", "style": "plain",
                     "length": "short"}
    hours = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([HOURS]), **SPREAD)
    assert "only one or two of its values (day)" in prompts.generate_messages(hours, optional_some, [], 5)[1]["content"]
    assert {"kind": "missing_argument", "tool": "book_table"} in kinds
    # A tool that requires nothing still gets requests that state none of its values (the
    # student learns to ask, not to call with invented ones); a tool without parameters does not.
    optional = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([HOURS]), **SPREAD)
    assert [k["kind"] for k in input_kinds(optional)] == ["call", "no_call", "call", "missing_argument"]
    ask = prompts.generate_messages(optional, {**SPREAD, "kind": "missing_argument", "tool": "hours",
                                               "topic": "dinner", "style": "plain", "length": "short"}, [], 5)
    assert "give none of its values (day)" in ask[1]["content"]
    clock = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}
    bare = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([clock]), **SPREAD)
    assert [k for k in input_kinds(bare) if k["kind"] != "no_call"] == [{"kind": "call", "tool": "clock"}] * 2
    assert [k["kind"] for k in kinds[:4]] == ["call", "no_call", "call", "missing_argument"]  # even few calls mix
    buckets = plan_buckets(tools, 12, seed=0)
    assert {b["kind"] for b in buckets} == {"call", "no_call", "missing_argument"}
    extraction = TaskSpec(task="t", task_type="extraction", output_fields=["date"], **SPREAD)
    assert [k["kind"] for k in input_kinds(extraction)] == ["all_fields", "some_fields", "no_fields"]
    open_book = TaskSpec(task="t", task_type="qa", qa_mode="open_book", **SPREAD)
    assert [k["kind"] for k in input_kinds(open_book)].count("unanswerable") == 1
    ask = prompts.generate_messages(tools, buckets[0], [], 5)[1]["content"]
    assert "book_table (needs people)" in ask or "hours" in ask
    # A request for a tool is written about that tool, not a planned topic; other inputs keep theirs.
    for bucket in buckets:
        text = prompts.generate_messages(tools, bucket, [], 5)[1]["content"]
        assert ("Topic: dinner." in text) == (bucket["kind"] == "no_call"), (bucket, text)


def test_label_prompts_show_fields_tools_and_the_refusal():
    extraction = TaskSpec(task="t", task_type="extraction", fields=[FieldSpec(name="date", description="the day")],
                          **SPREAD)
    assert "- date (string): the day" in prompts.label_messages(extraction, "x")[0]["content"]
    tools = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([BOOK]), **SPREAD)
    system = prompts.label_messages(tools, "x")[0]["content"]
    assert '"name": "book_table"' in system and '{"reply": "..."}' in system
    assert "needs no value" not in system, "book_table requires people"
    # A tool whose arguments are all optional fits a request giving any one of them.
    both = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([BOOK, HOURS]), **SPREAD)
    assert "hours needs no value: call it as soon as the request states any one of its values" in \
        prompts.label_messages(both, "x")[0]["content"]
    no_arguments = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    assert prompts.optional_only_note(validate_tools([no_arguments])) == "", "nothing to state: no note"
    schema = prompts.answer_or_call_schema(call_schema(tools.tools))
    assert len(schema["anyOf"]) == 2 and schema["anyOf"][-1]["required"] == ["reply"]
    open_book = TaskSpec(task="t", task_type="qa", qa_mode="open_book", **SPREAD)
    assert QA_REFUSAL in prompts.label_messages(open_book, "x")[0]["content"]
    assert is_refusal("the passage does not answer this question") and not is_refusal("at noon")


def test_the_teacher_sees_a_few_answered_seeds_of_each_sort_never_a_test_row():
    seeds = [Row(input="Table for 4 on Friday", output='{"name": "book_table", "arguments": {"people": 4}}'),
             Row(input="Table for 2", output='{"name": "book_table", "arguments": {"people": 2}}'),
             Row(input="Table for 6", output='{"name": "book_table", "arguments": {"people": 6}}'),
             Row(input="Open on Sunday?", output='{"name": "hours", "arguments": {"day": "Sunday"}}'),
             Row(input="Do you have parking?", output="Yes, behind the restaurant."),
             Row(input="no output", output="")]
    body = JobCreate(task="book", tools=[BOOK, HOURS], examples=[s.model_dump() for s in seeds],
                     test_set=[{"input": "table for 2!", "output": ""}]).to_spec()
    spec = build_task_spec(body, {})
    # The test row's twin is left out; the rest are taken in turn from each tool and the reply.
    assert [r.input for r in spec.answered_examples] == ["Table for 4 on Friday", "Open on Sunday?",
                                                         "Do you have parking?", "Table for 6"]
    messages = prompts.label_messages(spec, "A table at 8")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert json.loads(messages[2]["content"]) == {"name": "book_table", "arguments": {"people": 4, "date": None}}
    assert json.loads(messages[6]["content"]) == {"reply": "Yes, behind the restaurant."}
    assert messages[-1]["content"] == "A table at 8"
    # Offered only `hours` (tools in the prompt), the teacher is shown no call of book_table.
    hours_only = spec.model_copy(update={"tools_in_prompt": True}).offering(["hours"])
    shown = [m["content"] for m in prompts.label_messages(hours_only, "x")[1:-1:2]]
    assert shown == ["Open on Sunday?", "Do you have parking?"]
    # Scored on the seeds (no test set), the teacher is never shown the one it answers.
    assert [r.input for r in unseen(spec, "Open on Sunday?").answered_examples] == [
        "Table for 4 on Friday", "Do you have parking?", "Table for 6"]
    assert unseen(spec, "A table at 8") is spec

    extraction = TaskSpec(task="t", task_type="extraction", fields=[FieldSpec(name="date"), FieldSpec(name="time")],
                          **SPREAD)
    answer = answered_examples.answer_turn(extraction, Row(input="Friday", output='{"date": "Friday"}'))
    assert json.loads(answer or "") == {"date": "Friday", "time": None}
    assert answered_examples.answer_turn(extraction, Row(input="x", output="not json")) is None
    labels = TaskSpec(task="t", task_type="classification", labels=[{"name": "a", "description": "a"},
                                                                    {"name": "b", "description": "b"}], **SPREAD)
    assert answered_examples.answer_turn(labels, Row(input="x", output="c")) is None
    assert prompts.label_messages(labels, "x")[1:] == [{"role": "user", "content": "x"}], "no seeds, no turns"


def test_curation_checks_each_type_and_names_the_reason():
    fields = [FieldSpec(name="date"), FieldSpec(name="party_size", type="integer", span=False)]
    extraction = TaskSpec(task="t", task_type="extraction", fields=fields, **SPREAD)
    row = {"input": "A table on Friday for 4", "output": '{"date": "Monday", "party_size": "4"}'}
    checked = check_row(row, extraction)
    assert json.loads(checked.row["output"]) == {"date": None, "party_size": 4} and checked.dropped_values == 1
    assert check_row({**row, "output": "Friday"}, extraction).reason == "invalid_json"
    assert check_row({**row, "output": '{"date": 3, "party_size": "four"}'}, extraction).reason == "schema_mismatch"

    tools = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([BOOK]), **SPREAD)
    call = {"input": "a table for 2", "kind": "call",
            "output": '{"arguments": {"people": 2}, "name": "book_table"}'}
    assert check_row(call, tools).row["output"] == '{"name": "book_table", "arguments": {"people": 2}}'
    assert check_row({**call, "output": '{"name": "book_table", "arguments": {}}'}, tools).reason == "invalid_call"
    assert check_row({**call, "kind": "no_call"}, tools).reason == "call_for_no_call_request"
    assert check_row({**call, "output": "How many people?"}, tools).reason == "no_call_for_call_request"
    assert check_row({**call, "kind": "missing_argument", "output": "How many?"}, tools).row is not None
    # A value the request does not state was invented: an optional argument is left out, a required one drops the row.
    invented = check_row({**call, "output": '{"name": "book_table", "arguments": {"people": 2, "date": "Friday"}}'},
                         tools)
    assert invented.row["output"] == '{"name": "book_table", "arguments": {"people": 2}}'
    assert invented.dropped_values == 1
    stated = check_row({**call, "input": "a table for 2 on friday.",
                        "output": '{"name": "book_table", "arguments": {"people": 2, "date": "Friday"}}'}, tools)
    assert stated.row["output"] == '{"name": "book_table", "arguments": {"date": "Friday", "people": 2}}'
    named = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([{"type": "function", "function": {
        "name": "greet", "parameters": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}}}}}]), **SPREAD)
    assert check_row({"input": "say hi to me", "kind": "call", "output": '{"name": "greet", "arguments": '
                      '{"name": "John Doe"}}'}, named).reason == "unstated_value"

    qa = TaskSpec(task="t", task_type="qa", qa_mode="open_book", **SPREAD)
    answer = {"input": "We open at noon.\n\nQuestion: When?", "output": "at noon", "kind": "answerable"}
    assert check_row({**answer, "supported": True}, qa).row is not None
    assert check_row({**answer, "supported": False}, qa).reason == "unsupported_answer"
    assert check_row({**answer, "output": QA_REFUSAL}, qa).reason == "refused_answerable"
    assert check_row({**answer, "output": QA_REFUSAL, "kind": "unanswerable"}, qa).row is not None


def test_tools_without_a_training_call_are_named_in_a_warning():
    spec = TaskSpec(task="t", task_type="tool_calling", tools=validate_tools([BOOK, HOURS]), **SPREAD)
    rows = [{"output": '{"name": "book_table", "arguments": {"people": 2}}', "split": "train"},
            {"output": '{"name": "hours", "arguments": {"day": "Monday"}}', "split": "validation"},
            {"output": "Hello! How can I help?", "split": "train"}]
    (warning,) = tool_coverage_warnings(rows, spec)
    assert warning["code"] == "tools_without_examples"
    assert warning["message"].startswith("1 of 2 tools have no training example (hours);")
    assert f"{EXAMPLES_PER_TOOL * 2})" in warning["message"]
    assert "learns only the calls it is trained on" in warning["message"]
    (in_prompt,) = tool_coverage_warnings(rows, spec.model_copy(update={"tools_in_prompt": True}))
    assert "reads its tools from the prompt" in in_prompt["message"]
    rows[1]["split"] = "train"
    assert tool_coverage_warnings(rows, spec) == []
    extraction = TaskSpec(task="t", task_type="extraction", output_fields=["date"], **SPREAD)
    assert tool_coverage_warnings([], extraction) == []


def test_job_warnings_gather_every_stage_in_order():
    curate = {"code": "tools_without_examples", "message": "a"}
    weak = {"code": "weak_teacher", "message": "b"}
    done = {"plan": {}, "curate": {"warnings": [curate]}, "teacher_check": {"warnings": [weak]}, "train": {}}
    assert job_warnings(done) == [curate, weak]
    assert job_warnings({}) == []


def test_the_persons_rows_tell_the_qa_mode():
    passage = Row(input=prompts.open_book_input("The shop opens at nine.", "When does it open?"), output="at nine")
    question = Row(input="When does the shop open?", output="at nine")
    assert prompts.qa_mode_of_rows([passage, passage]) == "open_book"
    assert prompts.qa_mode_of_rows([question]) == "closed_book"
    assert prompts.qa_mode_of_rows([passage, question]) is None
    assert prompts.qa_mode_of_rows([]) is None
    assert prompts.qa_mode_of_rows([Row(input="\n\nQuestion: no passage?", output="x")]) == "closed_book"
