"""How `/v1/chat/completions` shapes a student's answer text (tool calls, JSON answers) and checks
the request's `tools`, `tool_choice`, `response_format` and messages against the student's plan:
the pure functions of app/api/openai/tools.py and protocol.py, no services."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from app.answer_shapes import call_text
from app.api.openai.errors import OpenAIError
from app.api.openai.protocol import ChatCompletionRequest, ChatMessage
from app.api.openai.tools import AnswerShape, answer_shape, trained_tools
from app.specs import TaskSpec

BOOK = {"type": "function", "function": {
    "name": "book_table", "description": "Book a table",
    "parameters": {"type": "object", "properties": {"people": {"type": "integer", "minimum": 1},
                                                     "time": {"type": "string"}},
                   "required": ["people"]}}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}}
TOOL_SPEC = TaskSpec(task="book tables and tell the weather", task_type="tool_calling", tools=[BOOK, WEATHER])
EXTRACTION_SPEC = TaskSpec(task="find the city", task_type="extraction", fields=[{"name": "city"}])
CLASSIFICATION_SPEC = TaskSpec(task="spam or ham", task_type="classification",
                               labels=[{"name": "spam", "description": "s"}, {"name": "ham", "description": "h"}])
QA_SPEC = TaskSpec(task="answer questions", task_type="qa")
MODEL = "0b9c1d2e-0000-4000-8000-000000000000"
CALL = '{"name": "book_table", "arguments": {"people": 2}}'


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                                                 **body})


def shape(spec: TaskSpec | None = TOOL_SPEC, **body: Any) -> AnswerShape:
    return answer_shape(request(**body), MODEL, spec)


def refused(spec: TaskSpec | None, **body: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        shape(spec, **body)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value


# --- answer text -> message ---------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    CALL,
    '  {"arguments": {"people": 2}, "name": "book_table"}\n',
    '```json\n{"name": "book_table", "arguments": {"people": 2}}\n```',
    '<tool_call>\n{"name": "book_table", "arguments": {"people": 2}}\n</tool_call>',
    '{"name": "book_table", "arguments": "{\\"people\\": 2}"}',
])
def test_a_valid_call_becomes_tool_calls(text):
    message, finish = shape().message(text, "stop")
    assert finish == "tool_calls" and message.content is None
    [call] = message.tool_calls or []
    assert re.fullmatch(r"call_[0-9a-f]{24}", call.id) and call.type == "function"
    assert call.function.name == "book_table"
    assert call.function.arguments == '{"people": 2}' and json.loads(call.function.arguments) == {"people": 2}


def test_call_ids_differ_and_arguments_are_sorted_json_text():
    answer = '{"name": "book_table", "arguments": {"time": "19:00", "people": 4}}'
    one, two = shape().call(answer), shape().call(answer)
    assert one and two and one.id != two.id
    assert one.function.arguments == '{"people": 4, "time": "19:00"}'
    assert call_text({"name": one.function.name, "arguments": json.loads(one.function.arguments)}) == (
        '{"name": "book_table", "arguments": {"people": 4, "time": "19:00"}}')


def test_a_call_cut_off_by_max_tokens_is_text():
    message, finish = shape().message('{"name": "book_table", "arguments": {"peo', "length")
    assert (message.content, message.tool_calls, finish) == ('{"name": "book_table", "arguments": {"peo', None,
                                                              "length")


@pytest.mark.parametrize("text", [
    "Sure, a table for two.",
    "",
    'Calling {"name": "book_table", "arguments": {"people": 2}}',  # text around the call
    '{"name": "book_table", "arguments": {"people": "two"}}',  # fails the parameters
    '{"name": "book_table", "arguments": {}}',  # a required argument missing
    '{"name": "cancel_table", "arguments": {}}',  # no such tool
    '{"name": "book_table", "arguments": {"people": 2}, "why": "asked"}',  # unknown key
    "[1, 2]",
    "{not json",
])
def test_anything_but_a_valid_call_is_the_text_as_is(text):
    message, finish = shape().message(text, "stop")
    assert message.content == text and message.tool_calls is None and finish == "stop"


def test_only_allowed_tools_are_calls():
    weather = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    assert shape().call(weather) is not None
    narrowed = shape(tools=[BOOK])  # the request offered only book_table
    assert narrowed.call(CALL) is not None and narrowed.call(weather) is None
    named = shape(tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert named.call(weather) is not None and named.call(CALL) is None
    assert named.message(CALL, "stop")[0].content == CALL
    for never in (shape(tool_choice="none"), shape(EXTRACTION_SPEC), shape(CLASSIFICATION_SPEC), shape(None)):
        assert not never.can_call and never.message(CALL, "stop")[0].content == CALL
    assert shape(tool_choice="auto").tools == shape().tools == trained_tools(TOOL_SPEC)


def test_an_answer_is_held_only_while_it_may_become_a_call():
    tool = shape()
    for prefix in ("", "  \n", "{", '{"name": "bo', "```", "```json\n{", "<tool_call>", "<"):
        assert tool.could_still_be_call(prefix), prefix
    for prefix in ("S", "  Sure", "The", "[", '"{'):
        assert not tool.could_still_be_call(prefix), prefix
    assert not shape(tool_choice="none").could_still_be_call("{")


# --- tools, tool_choice and response_format against the plan ------------------------------------


def test_trained_tools_are_accepted_renamed_descriptions_and_all():
    reordered = {"type": "function", "function": {
        "name": "book_table", "description": "another description", "strict": True,
        "parameters": {"required": ["people"], "type": "object",
                       "properties": {"time": {"type": "string"}, "people": {"minimum": 1, "type": "integer"}}}}}
    assert [t["function"]["name"] for t in shape(tools=[reordered]).tools] == ["book_table"]
    assert [t["function"]["name"] for t in shape(tools=[WEATHER, BOOK]).tools] == ["book_table", "get_weather"]
    no_params = TaskSpec(task="t", task_type="tool_calling", tools=[{"type": "function", "function": {"name": "ping"}}])
    assert shape(no_params, tools=[{"type": "function", "function": {
        "name": "ping", "parameters": {"type": "object", "properties": {}}}}]).can_call
    assert shape(tools=[]).tools == shape().tools  # an empty list is no narrowing


def test_tools_the_student_was_not_trained_on_are_400_naming_the_tool():
    cancel = {"type": "function", "function": {"name": "cancel_table", "parameters": {"type": "object"}}}
    error = refused(TOOL_SPEC, tools=[BOOK, cancel])
    assert error.param == "tools" and "tools[1]" in error.message and "'cancel_table'" in error.message
    assert "book_table" in error.message  # what it was trained on

    changed = json.loads(json.dumps(BOOK))
    changed["function"]["parameters"]["properties"]["people"]["type"] = "string"
    error = refused(TOOL_SPEC, tools=[changed])
    assert error.param == "tools" and "'book_table'" in error.message and "parameters" in error.message

    error = refused(TOOL_SPEC, tools=[{"type": "function", "function": {"name": "has space"}}])
    assert error.param == "tools" and "tools.0.function.name" in error.message
    assert refused(TOOL_SPEC, tools=[BOOK, BOOK]).param == "tools"


@pytest.mark.parametrize("spec", [EXTRACTION_SPEC, CLASSIFICATION_SPEC, QA_SPEC, None],
                         ids=["extraction", "classification", "qa", "no plan"])
def test_tools_for_a_student_of_another_type_are_400(spec):
    error = refused(spec, tools=[BOOK])
    assert error.param == "tools" and "tool-calling" in error.message and MODEL in error.message


def test_tool_choice():
    required = shape(TOOL_SPEC, tool_choice="required")
    assert required.must_call and len(required.tools) == 2
    assert required.grammar() is not None and not required.grammar().text  # a call, never plain text
    named = shape(TOOL_SPEC, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert named.must_call and [t["function"]["name"] for t in named.tools] == ["get_weather"]
    auto = shape(TOOL_SPEC, tool_choice="auto")
    assert not auto.must_call and auto.grammar() is not None and auto.grammar().text
    assert shape(TOOL_SPEC, tool_choice="none").grammar() is None
    assert refused(CLASSIFICATION_SPEC, tool_choice="required").param == "tool_choice"
    unknown = refused(TOOL_SPEC, tool_choice={"type": "function", "function": {"name": "cancel_table"}})
    assert unknown.param == "tool_choice" and "'cancel_table'" in unknown.message
    left_out = refused(TOOL_SPEC, tools=[BOOK], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert left_out.param == "tool_choice" and "'get_weather'" in left_out.message
    assert refused(CLASSIFICATION_SPEC, tool_choice={"type": "function", "function": {"name": "x"}}).param == (
        "tool_choice")
    assert not shape(CLASSIFICATION_SPEC, tool_choice="none").can_call  # harmless for any student
    assert not shape(CLASSIFICATION_SPEC, tool_choice="auto").can_call
    with pytest.raises(ValidationError):
        request(tool_choice="sometimes")


def test_response_format():
    for spec in (EXTRACTION_SPEC, TOOL_SPEC):
        shape(spec, response_format={"type": "json_object"})
    for spec in (CLASSIFICATION_SPEC, QA_SPEC, None):
        error = refused(spec, response_format={"type": "json_object"})
        assert error.param == "response_format" and "json_object" in error.message
    for spec in (EXTRACTION_SPEC, TOOL_SPEC, CLASSIFICATION_SPEC):
        assert refused(spec, response_format={"type": "json_schema", "json_schema": {"name": "x"}}).param == (
            "response_format")
        shape(spec, response_format={"type": "text"})
    with pytest.raises(ValidationError):
        request(response_format={"type": "xml"})


@pytest.mark.parametrize("field", ["functions", "function_call", "logprobs", "top_logprobs"])
def test_other_unsupported_fields_stay_refused(field):
    with pytest.raises(ValidationError, match=field):
        request(**{field: [{"name": "f"}] if field == "functions" else 2})


# --- messages of an agent loop ------------------------------------------------------------------


def message(**fields: Any) -> dict[str, str]:
    return ChatMessage.model_validate(fields).as_template_message()


def test_tool_calls_and_tool_results_are_rendered_as_text():
    call = {"id": "call_1", "type": "function",
            "function": {"name": "book_table", "arguments": '{"time": "19:00", "people": 2}'}}
    assert message(role="assistant", content=None, tool_calls=[call]) == {
        "role": "assistant", "content": '{"name": "book_table", "arguments": {"people": 2, "time": "19:00"}}'}
    ping = {"id": "call_2", "type": "function", "function": {"name": "ping", "arguments": ""}}
    assert message(role="assistant", content="Booking.", tool_calls=[call, ping]) == {
        "role": "assistant",
        "content": 'Booking.\n{"name": "book_table", "arguments": {"people": 2, "time": "19:00"}}\n'
                   '{"name": "ping", "arguments": {}}'}
    assert message(role="tool", tool_call_id="call_1", content="booked: table 4") == {
        "role": "tool", "content": "booked: table 4"}
    assert message(role="tool", tool_call_id="call_1", content=[{"type": "text", "text": "ok"}]) == {
        "role": "tool", "content": "ok"}
    # what the openai client sends back from a reply, every optional field included
    assert message(role="assistant", content=None, refusal=None, function_call=None, audio=None,
                   tool_calls=[call])["content"] == call_text({"name": "book_table",
                                                               "arguments": {"people": 2, "time": "19:00"}})
    assert message(role="developer", content="Be brief.") == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("fields", [
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                            "function": {"name": "f", "arguments": "[1]"}}]},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                            "function": {"name": "f", "arguments": "{oops"}}]},
    {"role": "user", "content": "hi", "tool_calls": [{"id": "c", "type": "function",
                                                      "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c"},
    {"role": "assistant"},
    {"role": "user", "content": None},
])
def test_malformed_agent_messages_are_refused(fields):
    with pytest.raises(ValidationError):
        ChatMessage.model_validate(fields)


def test_a_chat_template_refusing_the_messages_is_told_apart():
    import jinja2

    from app.api.openai.router import _is_template_error

    template = jinja2.Environment().from_string("{{ undefined_call() }}")
    with pytest.raises(Exception) as caught:
        template.render()
    assert _is_template_error(caught.value)
    assert _is_template_error(jinja2.exceptions.TemplateError("Conversation roles must alternate"))
    assert not _is_template_error(ValueError("x")) and not _is_template_error(RuntimeError("y"))
