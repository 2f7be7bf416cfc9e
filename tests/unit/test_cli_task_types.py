"""The `vibetune` CLI for every task type: the files `tune` reads (fields, tools, JSON Lines rows),
the server's field errors as it prints them, and reports scored by the real per-type rules."""

from __future__ import annotations

import json

import pytest

from app.cli.client import ClientError
from app.cli.commands import UsageError, read_examples, read_fields, read_tools
from app.cli.output import report_kind, report_table, status_text
from workers.scoring import score_answers

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_json_lines_rows_send_objects_as_json_text_and_null_as_no_call(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"input": "Table for 4", "output": {"party_size": 4}}\n\n'
                    '{"input": "Thanks!", "output": null}\n{"input": "Paris?", "output": "Paris"}\n')
    assert read_examples(str(path)) == [{"input": "Table for 4", "output": '{"party_size": 4}'},
                                        {"input": "Thanks!", "output": ""}, {"input": "Paris?", "output": "Paris"}]
    path.write_text('{"input": "a", "output": "b"}\n{"input": "c", "output": \n')
    with pytest.raises(UsageError, match=r"rows.jsonl line 2 is not valid JSON"):
        read_examples(str(path))
    path.write_text('[{"output": "b"}]')
    with pytest.raises(UsageError, match=r"item 1: expected an object with the keys input and output"):
        read_examples(str(path))


def test_tools_files_take_a_list_a_tools_object_or_one_tool(tmp_path):
    path = tmp_path / "tools.json"
    for content in ([WEATHER], {"tools": [WEATHER]}, WEATHER):
        path.write_text(json.dumps(content))
        assert read_tools(str(path)) == [WEATHER]
    for content, message in (("[{", r"is not valid JSON: .* \(line 1, column 3\)"), ('"x"', "expected a JSON list"),
                             ("[]", "holds no tools"), ("", "is empty")):
        path.write_text(content)
        with pytest.raises(UsageError, match=message):
            read_tools(str(path))
    with pytest.raises(UsageError, match=r"missing.json: no such file"):
        read_tools(str(tmp_path / "missing.json"))


def test_fields_are_text_as_given_or_json_from_an_at_file(tmp_path):
    assert read_fields("date:the day,n:people:integer") == "date:the day,n:people:integer"
    schema = {"type": "object", "properties": {"date": {"type": "string", "description": "the day"}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    assert read_fields(f"@{tmp_path / 'schema.json'}") == schema
    (tmp_path / "fields.json").write_text(json.dumps({"fields": [{"name": "date"}]}))
    assert read_fields(f"@{tmp_path / 'fields.json'}") == [{"name": "date"}]
    with pytest.raises(UsageError, match="no such file"):
        read_fields(f"@{tmp_path / 'nope.json'}")


def test_field_errors_that_name_their_locations_are_one_line_each():
    message = "tools.1.function.name: duplicate tool name 'a'; tools.2.type: must be 'function'"
    row = "must be the JSON object of the fields (as JSON text)"
    body = "a tool_calling task needs `tools`: the functions the student may call"
    fields = [{"field": "tools", "message": message}, {"field": "test_set.0.output", "message": row},
              {"field": "body", "message": body}]
    error = ClientError("; ".join(f"{f['field']}: {f['message']}" for f in fields), fields)
    assert error.lines() == ["vibetune: the server refused the request:",
                             "  tools.1.function.name: duplicate tool name 'a'", "  tools.2.type: must be 'function'",
                             f"  test_set.0.output: {row}", f"  {body}"]


def test_extraction_report_has_parse_rate_and_a_per_field_table():
    expected = [json.dumps({"day": "Friday", "party_size": 4}), json.dumps({"day": "Monday", "party_size": 2})]
    report = {"teacher": score_answers(expected, expected, "extraction"),
              "student": score_answers(expected, [json.dumps({"day": "Friday", "party_size": 3}), "oops"],
                                       "extraction"), "verdict": "retune"}
    lines = report_table(report).splitlines()
    assert report_kind(report) == "extraction"
    assert lines[0].split() == ["MODEL", "ACCURACY", "95%", "CI", "MACRO-F1", "PARSED", "P50", "MS", "SIZE"]
    assert lines[3].split()[:6] == ["tuned", "student", "0.000", "-", "0.333", "0.500"]
    assert lines[5].split() == ["FIELD", "N", "TEACHER", "P/R/F1", "TUNED", "P/R/F1"]  # models scored so far
    assert lines[6].split() == ["day", "2", "1.00/1.00/1.00", "1.00/0.50/0.67"]
    assert lines[7].split() == ["party_size", "2", "1.00/1.00/1.00", "0.00/0.00/0.00"]
    assert "verdict: retune" in lines


def test_qa_report_shows_exact_match_and_f1():
    report = {"teacher": score_answers(["Paris", "the blue whale"], ["paris", "blue whale!"], "qa"),
              "student": score_answers(["Paris", "the blue whale"], ["Lyon", "a whale"], "qa")}
    lines = report_table(report).splitlines()
    assert report_kind(report) == "qa"
    assert lines[0].split() == ["MODEL", "ACCURACY", "95%", "CI", "F1", "P50", "MS", "SIZE"]
    assert lines[1].split()[:4] == ["teacher", "1.000", "-", "1.000"]
    assert lines[3].split()[:5] == ["tuned", "student", "0.000", "-", "0.333"]


def test_tool_calling_report_shows_call_rates_and_the_tuned_students_mismatches():
    calls = [json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}), "",
             json.dumps({"name": "get_weather", "arguments": {"city": "Rome"}})]
    report = {"teacher": score_answers(calls, [calls[0], "Sure!", calls[2]], "tool_calling", tools=[WEATHER]),
              "student": score_answers(calls, ['{"name": "get_weather", "arguments": {"city": "Lyon"}}', calls[0],
                                                None], "tool_calling", tools=[WEATHER])}
    lines = report_table(report).splitlines()
    assert report_kind(report) == "tool_calling"
    assert lines[0].split() == ["MODEL", "ACCURACY", "95%", "CI", "CALLS", "VALID", "NO-CALL", "P50", "MS", "SIZE"]
    assert lines[3].split()[:7] == ["tuned", "student", "0.000", "-", "0.000", "1.000", "0.000"]
    assert lines[5:9] == [
        "mismatches of the tuned student:",
        '  row 0: expected get_weather {"city": "Paris"}; got {"name": "get_weather", "arguments": {"city": "Lyon"}} '
        "(wrong value for city)",
        '  row 1: expected no call; got {"name": "get_weather", "arguments": {"city": "Paris"}} '
        "(called a tool when none was needed)",
        '  row 2: expected get_weather {"city": "Rome"}; got no answer']


def test_status_names_the_task_type_with_its_fields_or_tools():
    job = {"id": "x", "task": "t", "status": "queued", "created_at": None}
    extraction = {**job, "spec": {"task_type": "extraction", "fields": [{"name": "day"}, {"name": "party_size"}]}}
    assert "type      extraction - fields: day, party_size" in status_text(extraction)
    tools = {**job, "spec": {"task_type": "tool_calling", "tools": [WEATHER]}}
    assert "type      tool_calling - tools: get_weather" in status_text(tools)
    inferred = {**job, "spec": {"task_type": None}, "plan": {"task_type": "qa"}}
    assert "type      qa (inferred)" in status_text(inferred)
    assert "type" not in status_text(job)
