"""The answer shape of tool calling: tools, the call's JSON schema, its checks and BFCL functions as tools."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.answer_shapes import (
    ToolsError,
    bfcl_to_openai_tool,
    call_schema,
    call_text,
    check_call,
    parameter_names,
    standard_text,
    stated_call,
    tools_prompt,
    unstated_arguments,
    validate_tools,
    without_unset,
)

BFCL = Path(os.environ.get("VIBETUNE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / \
    "bfcl_function_calling" / "BFCL_v4_simple_python.json"

BOOK_PARAMS = {
    "type": "object",
    "properties": {"date": {"type": "string"}, "people": {"type": "integer", "minimum": 1}},
    "required": ["date", "people"],
    "additionalProperties": False,
}
BOOK = {"type": "function", "function": {"name": "book", "description": "Book a table", "parameters": BOOK_PARAMS}}
PING = {"type": "function", "function": {"name": "ping"}}
TOOLS = [BOOK, PING]


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


# --- tools ---------------------------------------------------------------------------------------


def test_validate_tools_normalises():
    assert validate_tools(TOOLS) == [
        {"type": "function", "function": {"name": "book", "description": "Book a table", "parameters": BOOK_PARAMS}},
        {"type": "function", "function": {"name": "ping", "description": "",
                                          "parameters": {"type": "object", "properties": {}}}},
    ]
    normal = validate_tools(TOOLS)
    normal[0]["function"]["parameters"]["properties"].clear()
    assert BOOK_PARAMS["properties"], "the normalised tools are a copy"


def _errors(tools: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ToolsError) as e:
        validate_tools(tools)
    assert isinstance(e.value, ValueError)
    return e.value.errors


def test_parameter_names_are_the_required_then_the_optional_ones():
    hours = {"type": "function", "function": {"name": "hours", "parameters": {
        "type": "object", "properties": {"day": {"type": "string"}, "shop": {"type": "string"}}, "required": ["shop"]}}}
    assert parameter_names([*TOOLS, hours], "hours") == (["shop"], ["day"])
    assert parameter_names(TOOLS, "book") == (["date", "people"], [])
    assert parameter_names(TOOLS, "ping") == ([], []) and parameter_names(TOOLS, "unknown") == ([], [])


def test_validate_tools_rejects_duplicate_and_bad_names():
    other = {"type": "function", "function": {"name": "book table"}}
    assert _errors([BOOK, PING, BOOK, other]) == [
        (("tools", 2, "function", "name"), "duplicate tool name 'book'"),
        (("tools", 3, "function", "name"), "must be 1-64 letters, digits, '_', '.' or '-' (got 'book table')"),
    ]
    assert _errors([{"type": "function", "function": {"name": "x" * 65}}])[0][0] == ("tools", 0, "function", "name")
    assert _errors([{"type": "function", "function": {}}]) == [
        (("tools", 0, "function", "name"), "must be 1-64 letters, digits, '_', '.' or '-' (got None)")]


def test_validate_tools_rejects_bad_parameter_schemas():
    def tool(params: Any) -> dict[str, Any]:
        return {"type": "function", "function": {"name": "f", "parameters": params}}

    at = ("tools", 0, "function", "parameters")
    assert _errors([tool({"type": "objet"})]) == [
        (at, "not a valid JSON schema: 'objet' is not valid under any of the given schemas (at ['type'])")]
    assert _errors([tool({"type": "object", "required": "date"})]) == [
        (at, "not a valid JSON schema: 'date' is not of type 'array' (at ['required'])")]
    assert _errors([tool({"type": "string"})]) == [(at, 'must be a JSON schema of "type": "object"')]
    assert _errors([tool({"properties": {}})]) == [(at, 'must be a JSON schema of "type": "object"')]
    assert _errors([tool("object")]) == [(at, "must be a JSON schema object")]
    assert _errors([tool({"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {}}})]) == [
        (at, "$ref is not supported: write the schema out")]


def test_validate_tools_rejects_bad_lists_and_items():
    assert _errors([]) == [(("tools",), "give at least one tool")]
    assert _errors({"type": "function"}) == [(("tools",), "must be a list of tools")]
    many = [{"type": "function", "function": {"name": f"t{i}"}} for i in range(21)]
    assert _errors(many) == [(("tools",), "at most 20 tools, got 21")]
    assert len(validate_tools(many[:20])) == 20
    assert _errors(["book"]) == [(("tools", 0), "must be an object")]
    assert _errors([{"function": {"name": "f"}}]) == [(("tools", 0, "type"), "must be 'function'")]
    assert _errors([{"type": "function"}]) == [(("tools", 0, "function"), "must be an object")]
    assert _errors([{"type": "function", "function": {"name": "f", "description": 3, "extra": 1}, "id": 1}]) == [
        (("tools", 0, "id"), "unknown key"),
        (("tools", 0, "function", "extra"), "unknown key"),
        (("tools", 0, "function", "description"), "must be a string"),
    ]
    assert "tools.0.function.description: must be a string" in str(
        pytest.raises(ToolsError, validate_tools, [{"type": "function", "function": {"name": "f", "description": 3}}])
        .value)


def test_call_schema_names_every_argument_and_accepts_nothing_else():
    schema = call_schema(TOOLS)
    Draft202012Validator.check_schema(schema)
    optional = {"type": "function", "function": {"name": "find", "parameters": {
        "type": "object", "required": ["city"],
        "properties": {"city": {"type": "string"}, "cuisine": {"type": "string"}}}}}
    branch = call_schema([optional])["anyOf"][0]
    assert branch["required"] == ["name", "arguments"] and branch["additionalProperties"] is False
    assert branch["properties"]["name"] == {"type": "string", "const": "find"}
    assert branch["properties"]["arguments"]["required"] == ["city", "cuisine"]
    assert branch["properties"]["arguments"]["properties"]["cuisine"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]}
    assert _valid(schema, {"name": "book", "arguments": {"date": "May 1", "people": 2}})
    assert _valid(schema, {"name": "ping", "arguments": {}})
    assert not _valid(schema, {"name": "book", "arguments": {"date": "May 1"}})
    assert not _valid(schema, {"name": "book", "arguments": {"date": "May 1", "people": "2"}})
    assert not _valid(schema, {"name": "book", "arguments": {"date": None, "people": 2}})  # required: never null
    assert not _valid(schema, {"name": "cancel", "arguments": {}})
    assert not _valid(schema, {"name": "ping"})
    assert not _valid(schema, {"name": "ping", "arguments": {}, "why": "x"})
    find = call_schema([optional])
    assert _valid(find, {"name": "find", "arguments": {"city": "Oslo", "cuisine": None}})
    assert not _valid(find, {"name": "find", "arguments": {"city": "Oslo"}})  # every argument is named
    assert without_unset({"name": "find", "arguments": {"city": "Oslo", "cuisine": None}}, [optional]) == {
        "name": "find", "arguments": {"city": "Oslo"}}


def test_unstated_arguments_are_free_text_values_the_request_does_not_hold():
    tool = {"type": "function", "function": {"name": "book_table", "parameters": {"type": "object", "properties": {
        "people": {"type": "string"}, "time": {"type": "string"}, "first_name": {"type": "string"},
        "size": {"type": "integer"}, "area": {"type": "string", "enum": ["inside", "outside"]},
        "day": {"type": "string", "format": "date"}, "date": {"type": "string"}}}}}
    request = "A table for 7 at 1:15 PM on 2023 April 4th."
    call = {"name": "book_table", "arguments": {"people": "7", "time": "1:15pm", "first_name": "John",
                                               "size": 7, "area": "outside", "day": "2026-12-05",
                                               "date": "2023-04-04"}}
    assert unstated_arguments(call, [tool], request) == ["first_name"]
    assert unstated_arguments({"name": "book_table", "arguments": {"time": "7:30", "date": "tomorrow"}}, [tool],
                              "A table for 7") == ["time", "date"]
    assert unstated_arguments({"name": "book_table", "arguments": {"people": "5", "time": "ten"}}, [tool],
                              "Five of us at 10") == []
    kept, left_out = stated_call({"name": "book_table", "arguments": {"people": "7", "date": "Friday"}}, [tool],
                                 "a table for 7")
    assert kept == {"name": "book_table", "arguments": {"people": "7"}} and left_out == ["date"]
    # A call of invented values only is no call the request asked for.
    assert stated_call({"name": "book_table", "arguments": {"date": "Friday"}}, [tool], "a table") == (None, ["date"])
    assert stated_call({"name": "book_table", "arguments": {}}, [tool], "a table") == (
        {"name": "book_table", "arguments": {}}, [])
    assert unstated_arguments({"name": "nope", "arguments": {"x": "y"}}, [tool], request) == []
    assert standard_text("April 1, 2024") == standard_text("april 1 2024") == "april12024"
    assert standard_text("3x^2 + 2x - 1") == standard_text("3x**2+2x-1")


def test_check_call_accepts_dicts_json_text_and_wrappers():
    good = {"name": "book", "arguments": {"date": "May 1", "people": 2}}
    text = json.dumps(good)
    openai_shape = {"id": "c1", "type": "function",
                    "function": {"name": "book", "arguments": json.dumps(good["arguments"])}}
    for answer in (good, text, f"```json\n{text}\n```", f"<tool_call>\n{text}\n</tool_call>",
                   f"<tool_call>```\n{text}\n```</tool_call>", openai_shape):
        result = check_call(answer, TOOLS)
        assert (result.call, result.problems) == (good, []), answer
    assert check_call('{"name": "ping"}', TOOLS).call == {"name": "ping", "arguments": {}}


@pytest.mark.parametrize(("call", "problems"), [
    (None, ["no call"]),
    ("It is sunny today.", ["not a JSON object"]),
    ("```json\n[1]\n```", ["not a JSON object"]),
    ({"name": "cancel", "arguments": {}}, ["unknown tool 'cancel'"]),
    ({"arguments": {}}, ["the call has no tool name"]),
    ({"name": 3, "arguments": {}}, ["the tool name must be a string"]),
    ({"name": "book", "arguments": ["May 1", 2]}, ["arguments must be a JSON object"]),
    ({"name": "book", "arguments": "May 1"}, ["arguments must be a JSON object"]),
    ({"name": "book", "arguments": {"people": 2}}, ["missing required argument 'date'"]),
    ({"name": "book", "arguments": {}}, ["missing required argument 'date'", "missing required argument 'people'"]),
    ({"name": "book", "arguments": {"date": "May 1", "people": "2"}},
     ["argument 'people': '2' is not of type 'integer'"]),
    ({"name": "book", "arguments": {"date": "May 1", "people": 0}},
     ["argument 'people': 0 is less than the minimum of 1"]),
    ({"name": "book", "arguments": {"date": "May 1", "people": 2, "time": "8pm"}}, ["unknown argument 'time'"]),
    ({"name": "book", "arguments": {"date": "May 1", "people": 2}, "why": "x"}, ["unknown key 'why' in the call"]),
])
def test_check_call_reports_problems(call, problems):
    result = check_call(call, TOOLS)
    assert result.call is None and result.problems == problems


def test_check_call_names_nested_arguments():
    params = {"type": "object", "properties": {"where": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}
    tools = [{"type": "function", "function": {"name": "go", "parameters": params}}]
    assert check_call({"name": "go", "arguments": {"where": {}}}, tools).problems == [
        "missing required argument 'where.city'"]
    assert check_call({"name": "go", "arguments": {"where": {"city": 1}}}, tools).problems == [
        "argument 'where.city': 1 is not of type 'string'"]


def test_tools_prompt_is_the_documented_deterministic_text():
    expected = "\n".join([
        "You can call these functions (each a JSON object with its name, description and parameters):",
        '{"description": "Book a table", "name": "book", "parameters": {"additionalProperties": false, '
        '"properties": {"date": {"type": "string"}, "people": {"minimum": 1, "type": "integer"}}, '
        '"required": ["date", "people"], "type": "object"}}',
        '{"name": "ping", "parameters": {"properties": {}, "type": "object"}}',
        'To call a function, answer with only a JSON object {"name": ..., "arguments": {...}}; '
        "if no function fits, answer in plain text.",
    ])
    assert tools_prompt(TOOLS) == expected
    reordered = [{"function": {"parameters": dict(reversed(BOOK_PARAMS.items())), "description": "Book a table",
                               "name": "book"}, "type": "function"}, PING]
    assert tools_prompt(reordered) == expected
    with pytest.raises(ToolsError):
        tools_prompt([])


def test_call_text_is_canonical_and_round_trips():
    text = call_text({"arguments": {"people": 2, "date": "1. Mai", "where": {"z": 1, "a": "café"}}, "name": "book"})
    assert text == '{"name": "book", "arguments": {"date": "1. Mai", "people": 2, "where": {"a": "café", "z": 1}}}'
    assert check_call(text, [{"type": "function", "function": {"name": "book"}}]).call == json.loads(text)
    assert call_text({"name": "ping"}) == '{"name": "ping", "arguments": {}}'
    with pytest.raises(ValueError):
        call_text({"arguments": {}})
    with pytest.raises(ValueError):
        call_text({"name": "book", "arguments": "{}"})


# --- BFCL ----------------------------------------------------------------------------------------


def test_bfcl_to_openai_tool_maps_the_type_names():
    fn = {"name": "geo.distance", "description": "Distance", "parameters": {"type": "dict", "properties": {
        "a": {"type": "tuple", "items": {"type": "float"}}, "b": {"type": "any"},
        "type": {"type": "dict", "properties": {"x": {"type": "float"}}}}, "required": ["a"]}}
    assert bfcl_to_openai_tool(fn) == {"type": "function", "function": {
        "name": "geo.distance", "description": "Distance", "parameters": {"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "number"}}, "b": {},
            "type": {"type": "object", "properties": {"x": {"type": "number"}}}}, "required": ["a"]}}}
    assert fn["parameters"]["type"] == "dict", "the input is not changed"


@pytest.mark.skipif(not BFCL.exists(), reason="the BFCL data is not on this machine")
def test_real_bfcl_tools_pass_validate_tools():
    rows = [json.loads(line) for line in BFCL.read_text().splitlines()[:20]]
    per_row = [validate_tools([bfcl_to_openai_tool(fn) for fn in row["function"]]) for row in rows]
    assert [len(tools) for tools in per_row] == [len(row["function"]) for row in rows] and len(rows) == 20
    for tools in per_row:
        Draft202012Validator.check_schema(call_schema(tools))
    normal = per_row[0]
    assert [t["function"]["name"] for t in per_row[1]] == ["math.factorial"]
    triangle = normal[0]["function"]
    assert triangle["parameters"]["type"] == "object"
    Draft202012Validator.check_schema(call_schema(normal))
    answer = '{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}'
    assert check_call(answer, normal).problems == []
    assert check_call({"name": "calculate_triangle_area", "arguments": {"base": 10.5}}, normal).problems == [
        "missing required argument 'height'", "argument 'base': 10.5 is not of type 'integer'"]
