"""Tool calls and JSON answers on `/v1/chat/completions`, over real finished jobs whose plan says
tool_calling (the bundled student standing in for a tuned one), extraction or classification
(stand-ins that are never loaded: only refused requests, or requests checked up to loading, go
to them).

The untuned student calls no tool by itself, so the call comes honestly from its greedy output:
shown one call repeated in the chat, SmolLM2-135M repeats the next call text exactly (checked
through `tool_choice: "none"`, which returns the raw text). The pure text-to-message rules are in
tests/unit/test_openai_shapes.py; here only what the service adds: the plan read with the job,
the OpenAI shapes plain and streamed, an agent loop, and the official client parsing them."""

from __future__ import annotations

import json
import re
from typing import Any

import openai
import pytest

from app.answer_shapes import call_text
from tests.api.test_openai_compat import QUESTION, STUDENT_DIR, assert_openai_error, sse_events
from tests.conftest import ADMIN_KEY
from tests.support.factories import make_finished_job
from workers.bundled_models import STUDENT, is_prepared

BOOK = {"type": "function", "function": {
    "name": "book_table", "description": "Book a table at the restaurant",
    "parameters": {"type": "object", "properties": {"people": {"type": "integer", "minimum": 1}},
                   "required": ["people"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "description": "The time now"}}
TOOLS = [BOOK, CLOCK]
CALL = call_text({"name": "book_table", "arguments": {"people": 2}})
#: An agent loop's history in which the greedy bundled student repeats the last call text.
ECHO_CALL = [
    {"role": "system", "content": "You repeat the user's text exactly."},
    {"role": "user", "content": call_text({"name": "get_time", "arguments": {}})},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
    {"role": "user", "content": CALL},
]
TOOL_SPEC = {"task": "Book tables and tell the time", "task_type": "tool_calling", "instruction": "Call a tool",
             "tools": TOOLS}
EXTRACTION_SPEC = {"task": "Find the city", "task_type": "extraction", "instruction": "Extract the city",
                   "fields": [{"name": "city"}], "output_fields": ["city"]}
CLASSIFICATION_SPEC = {"task": "spam or ham", "task_type": "classification", "instruction": "Label it",
                       "labels": [{"name": "spam", "description": "ads"}, {"name": "ham", "description": "normal"}]}
CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def served(model_dir, spec: dict[str, Any], **body: Any) -> str:
    """A succeeded job serving `model_dir`, whose plan stage stored `spec`."""
    return str(make_finished_job(model_dir=model_dir, metrics={"plan": {"task_spec": spec}}, task=spec["task"], **body))


@pytest.fixture(scope="module")
def tool_student(test_database) -> str:
    assert is_prepared(STUDENT), "the bundled student is not prepared: run `make models` (make test does)"
    return served(STUDENT_DIR, TOOL_SPEC, task_type="tool_calling", tools=TOOLS)


def stub_folder(tmp_path_factory) -> Any:
    folder = tmp_path_factory.mktemp("stub")
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture(scope="module")
def extraction_stub(test_database, tmp_path_factory) -> str:
    """An extraction student that cannot be loaded: what reaches loading passed every check."""
    return served(stub_folder(tmp_path_factory), EXTRACTION_SPEC, task_type="extraction", fields=[{"name": "city"}])


@pytest.fixture(scope="module")
def classification_stub(test_database, tmp_path_factory) -> str:
    """A classification student that is never loaded (only refused requests go to it)."""
    return served(stub_folder(tmp_path_factory), CLASSIFICATION_SPEC, labels=["spam", "ham"])


def official(client) -> openai.OpenAI:
    """The openai client over the app in-process (the test client is an httpx client)."""
    return openai.OpenAI(base_url="http://testserver/v1", api_key=ADMIN_KEY, http_client=client, max_retries=0)


def post(client, model: str, messages=ECHO_CALL, **body):
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages, "max_tokens": 32, **body})


def test_a_call_comes_back_as_tool_calls_and_its_result_can_be_sent_back(client, tool_student):
    # What the student wrote, unshaped: the call text, exactly.
    text = post(client, tool_student, tool_choice="none").json()["choices"][0]
    assert text["message"]["content"] == CALL and not text["message"].get("tool_calls")
    assert text["finish_reason"] == "stop"

    client_ = official(client)
    raw = client_.chat.completions.with_raw_response.create(
        model=tool_student, messages=ECHO_CALL, tools=TOOLS, tool_choice="auto", max_tokens=32)
    body = raw.http_response.json()
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert set(call) == {"id", "type", "function"} and CALL_ID.fullmatch(call["id"]) and call["type"] == "function"
    assert call["function"] == {"name": "book_table", "arguments": '{"people": 2}'}
    assert body["usage"]["completion_tokens"] > 0

    reply = raw.parse()  # the official client's own types
    message = reply.choices[0].message
    assert message.content is None and reply.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].id == call["id"] and message.tool_calls[0].function.name == "book_table"
    assert json.loads(message.tool_calls[0].function.arguments) == {"people": 2}

    # An agent loop sends the reply back (as the client's type, every optional field included)
    # with the tool's result.
    history = [*ECHO_CALL, message, {"role": "tool", "tool_call_id": call["id"], "content": "Booked: table 4"}]
    after = client_.chat.completions.create(model=tool_student, messages=history, tools=TOOLS, max_tokens=1)
    assert after.choices[0].finish_reason in ("stop", "length")
    assert after.usage.prompt_tokens > reply.usage.prompt_tokens + 10


def test_a_streamed_call_is_one_tool_calls_chunk(client, tool_student):
    raw = official(client).chat.completions.with_raw_response.create(
        model=tool_student, messages=ECHO_CALL, max_tokens=32, stream=True, stream_options={"include_usage": True},
        response_format={"type": "json_object"})
    chunks = [json.loads(e) for e in sse_events(raw.http_response.read().decode())[:-1]]
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in chunks] == [
        None, "tool_calls", "usage"]
    delta = chunks[0]["choices"][0]["delta"]
    assert set(delta) == {"role", "tool_calls"} and delta["role"] == "assistant"
    [call] = delta["tool_calls"]
    assert call["index"] == 0 and CALL_ID.fullmatch(call["id"]) and call["type"] == "function"
    assert call["function"] == {"name": "book_table", "arguments": '{"people": 2}'}
    assert chunks[1]["choices"][0]["delta"] == {}

    parsed = list(raw.parse())  # the same events, read by the official client
    parts = [c.choices[0] for c in parsed if c.choices]
    calls = [t for p in parts for t in p.delta.tool_calls or []]
    assert [(t.id, t.function.name, t.function.arguments) for t in calls] == [
        (call["id"], "book_table", '{"people": 2}')]
    assert parts[-1].finish_reason == "tool_calls" and not any(p.delta.content for p in parts)
    assert parsed[-1].usage.completion_tokens > 0


def test_tool_choice_required_or_named_makes_the_answer_a_call(client, tool_student):
    # The same question answered in text by default comes back as a valid call when a call is
    # required: the call grammar leaves out plain text, so the greedy student has to call.
    plain = post(client, tool_student, QUESTION, max_tokens=48).json()["choices"][0]
    assert not plain["message"].get("tool_calls")
    client_ = official(client)
    for choice, names in (("required", {"book_table", "get_time"}),
                          ({"type": "function", "function": {"name": "get_time"}}, {"get_time"})):
        reply = client_.chat.completions.create(model=tool_student, messages=QUESTION, tools=TOOLS,
                                                tool_choice=choice, max_tokens=48)
        assert reply.choices[0].finish_reason == "tool_calls", reply
        [call] = reply.choices[0].message.tool_calls
        assert call.function.name in names
        arguments = json.loads(call.function.arguments)
        if call.function.name == "book_table":
            assert set(arguments) == {"people"} and isinstance(arguments["people"], int)
        else:
            assert arguments == {}


def test_a_reply_that_is_no_call_is_text_and_streams(client, tool_student):
    plain = post(client, tool_student, QUESTION, max_tokens=16).json()["choices"][0]
    assert plain["message"]["content"].strip() and not plain["message"].get("tool_calls")
    assert plain["finish_reason"] in ("stop", "length")

    streamed = post(client, tool_student, QUESTION, max_tokens=16, stream=True)
    chunks = [json.loads(e) for e in sse_events(streamed.text)[:-1]]
    content = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len([c for c in content if c]) > 1, "text that cannot be a call streams as it comes"
    assert "".join(c or "" for c in content) == plain["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain["finish_reason"]


def test_json_object_is_accepted_for_an_extraction_student(client, extraction_stub):
    # Past every check, the request reaches loading (which this stand-in fails). That the answer
    # is the student's text as is, the streamed call above shows (it asks for json_object too).
    response = post(client, extraction_stub, QUESTION, response_format={"type": "json_object"})
    assert_openai_error(response, 503, "model_unavailable")
    assert_openai_error(post(client, extraction_stub, QUESTION, response_format={"type": "json_schema"}), 400,
                        param="response_format")


def test_what_a_student_cannot_do_is_400_in_openai_shape(client, tool_student, extraction_stub,
                                                          classification_stub):
    cancel = {"type": "function", "function": {"name": "cancel_table", "parameters": {"type": "object"}}}
    changed = json.loads(json.dumps(BOOK))
    changed["function"]["parameters"]["properties"]["people"]["type"] = "string"
    cases = [
        (tool_student, {"tools": [BOOK, cancel]}, "tools", "'cancel_table'"),
        (tool_student, {"tools": [changed]}, "tools", "'book_table'"),
        (tool_student, {"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools", "name"),
        (classification_stub, {"tool_choice": "required"}, "tool_choice", "required"),
        (tool_student, {"tool_choice": {"type": "function", "function": {"name": "cancel_table"}}}, "tool_choice",
         "'cancel_table'"),
        (tool_student, {"tools": [BOOK], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
         "tool_choice", "'get_time'"),
        (tool_student, {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format",
         "json_schema"),
        (extraction_stub, {"tools": [BOOK]}, "tools", "extraction"),
        (classification_stub, {"tools": [BOOK]}, "tools", "classification"),
        (classification_stub, {"response_format": {"type": "json_object"}}, "response_format", "classification"),
        (tool_student, {"messages": [{"role": "tool", "tool_call_id": "c"}]}, "messages.0.content", "required"),
        (tool_student, {"messages": [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_time", "arguments": "[]"}}]}]},
         "messages.0.tool_calls", "JSON object"),
    ]
    for model, body, param, named in cases:
        body = {"messages": QUESTION, **body}
        error = assert_openai_error(post(client, model, **body), 400, param=param)
        assert named in error["message"], (body, error)
    with pytest.raises(openai.BadRequestError) as bad:
        official(client).chat.completions.create(model=tool_student, messages=QUESTION, tools=[cancel])
    assert bad.value.param == "tools" and "cancel_table" in bad.value.message


CANCEL = {"type": "function", "function": {
    "name": "cancel_table", "description": "Cancel a booking",
    "parameters": {"type": "object", "properties": {"people": {"type": "integer"}}}}}


@pytest.fixture(scope="module")
def prompt_tool_student(test_database) -> str:
    """A student that reads its tools from the prompt (`tools_in_prompt`), trained on TOOLS."""
    return served(STUDENT_DIR, {**TOOL_SPEC, "tools_in_prompt": True}, task_type="tool_calling", tools=TOOLS,
                  tools_in_prompt=True)


def test_a_student_reading_tools_from_its_prompt_is_shown_the_requests_tools(client, prompt_tool_student):
    from transformers import AutoTokenizer

    from app.answer_shapes import tools_prompt
    from app.inference import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(STUDENT_DIR)
    cancel_call = call_text({"name": "cancel_table", "arguments": {"people": 2}})
    echo = [{"role": "user", "content": "Repeat exactly: " + cancel_call}]
    # A tool it was never trained on is taken and shown as the system message it was trained with.
    reply = official(client).chat.completions.create(model=prompt_tool_student, messages=echo, tools=[CANCEL],
                                                     max_tokens=32)
    shown = [{"role": "system", "content": tools_prompt([CANCEL])}, *echo]
    assert reply.usage.prompt_tokens == len(prompt_ids(tokenizer, shown))
    bare = post(client, prompt_tool_student, echo, tool_choice="none").json()  # no tools: no system message
    assert bare["usage"]["prompt_tokens"] == len(prompt_ids(tokenizer, echo))
    # (How its answer becomes tool_calls is the same as for any tool student: tests above and the unit tests.)
    assert reply.choices[0].finish_reason in ("tool_calls", "stop", "length")
    # With no `tools`, every tool it was trained on is shown.
    every = post(client, prompt_tool_student, echo).json()
    assert every["usage"]["prompt_tokens"] == len(prompt_ids(tokenizer, [
        {"role": "system", "content": tools_prompt(TOOLS)}, *echo]))
