"""A tool-calling student that reads its tools from the prompt (`tools_in_prompt`): the job body's
checks, the tools offered with each training input, the one prompt training, evaluation and
serving build, and how `/v1` shapes a request for it. Pure logic, no services."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from app.answer_shapes import TOOLS_PROMPT_HEADER, call_text, tools_prompt
from app.api.openai.errors import OpenAIError
from app.api.openai.protocol import ChatCompletionRequest
from app.api.openai.tools import answer_shape
from app.schemas import JobCreate
from app.specs import Row, TaskSpec
from workers.packaging.card import answer_shape as card_answer_shape
from workers.training.data import MOST_OFFERED_TOOLS, offered_tool_names, sft_example, with_offered_tools


def tool(name: str, **properties: Any) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": f"does {name}",
        "parameters": {"type": "object", "properties": properties or {"x": {"type": "string"}}}}}


TOOLS = [tool(name) for name in ("alpha", "beta", "gamma", "delta", "epsilon")]
NAMES = [t["function"]["name"] for t in TOOLS]
SPEC = TaskSpec(task="call tools", task_type="tool_calling", tools=TOOLS, tools_in_prompt=True)
BAKED = SPEC.model_copy(update={"tools_in_prompt": False})
CALL = call_text({"name": "beta", "arguments": {"x": "y"}})


# --- the job body -------------------------------------------------------------------------------


def body(**extra: Any) -> dict[str, Any]:
    return {"task": "call tools", "tools": TOOLS, "tools_in_prompt": True, **extra}


def test_rows_may_name_the_tools_offered_with_them():
    job = JobCreate.model_validate(body(test_set=[{"input": "do beta", "output": CALL, "tools": ["beta", "gamma"]},
                                                  {"input": "nothing", "output": "", "tools": []},
                                                  {"input": "all of them", "output": CALL}]))
    spec = job.to_spec()
    assert spec.tools_in_prompt and [row.tools for row in spec.test_set] == [["beta", "gamma"], [], None]
    stored = spec.model_dump(mode="json")["test_set"]  # a row names its tools only when it has some
    assert [sorted(row) for row in stored] == [["input", "output", "tools"]] * 2 + [["input", "output"]]


@pytest.mark.parametrize(("extra", "where", "words"), [
    ({"test_set": [{"input": "a", "output": CALL, "tools": ["zeta"]}]}, "test_set.0.tools", "['zeta']"),
    ({"examples": [{"input": "a", "output": CALL, "tools": ["alpha"]}]}, "examples.0.tools", "'beta'"),
    ({"test_set": [{"input": "a", "output": "", "tools": ["alpha", "alpha"]}]}, "test_set.0.tools", "twice"),
    ({"tools_in_prompt": False, "test_set": [{"input": "a", "output": CALL, "tools": ["beta"]}]},
     "test_set.0.tools", "tools_in_prompt"),
])
def test_bad_row_tools_are_errors_at_the_row(extra, where, words):
    with pytest.raises(ValidationError) as caught:
        JobCreate.model_validate(body(**extra))
    located = {".".join(str(p) for p in error["loc"]): error["msg"] for error in caught.value.errors()}
    assert where in located and words in located[where], located


def test_tools_in_prompt_is_for_tool_calling_only():
    with pytest.raises(ValidationError, match="tools_in_prompt"):
        JobCreate.model_validate({"task": "spam or ham", "labels": ["spam", "ham"], "tools_in_prompt": True})


# --- the tools offered with each training input -------------------------------------------------


def test_a_call_is_offered_its_tool_and_up_to_one_other():
    rng = random.Random(0)
    sizes: Counter[int] = Counter()
    for _ in range(300):
        offered = offered_tool_names(NAMES, "beta", rng)
        assert "beta" in offered and len(set(offered)) == len(offered) and set(offered) <= set(NAMES)
        sizes[len(offered)] += 1
    assert set(sizes) == set(range(1, MOST_OFFERED_TOOLS + 1))  # alone, and among others
    positions = Counter(offered_tool_names(NAMES, "beta", rng).index("beta") for _ in range(300))
    assert len(positions) == MOST_OFFERED_TOOLS  # not always first: the order says nothing


def test_an_input_needing_no_call_is_offered_one_or_two_tools():
    rng = random.Random(1)
    sizes = Counter(len(offered_tool_names(NAMES, None, rng)) for _ in range(300))
    assert set(sizes) == {1, 2}
    assert offered_tool_names(["only"], "only", rng) == ["only"]
    assert offered_tool_names(["only"], None, rng) == ["only"]


def test_rows_get_offered_tools_deterministically_and_keep_their_own():
    rows = [{"input": "do beta", "output": CALL}, {"input": "hello", "output": "Hi!"},
            {"input": "own", "output": CALL, "tools": ["beta"]}]
    first = with_offered_tools(rows, SPEC, seed=3)
    assert first == with_offered_tools(rows, SPEC, seed=3)
    assert "beta" in first[0]["tools"] and first[1]["tools"] and first[2]["tools"] == ["beta"]
    assert with_offered_tools(rows, BAKED, seed=3) == rows  # baked-in tools: nothing offered


def test_the_student_prompt_is_the_same_in_training_evaluation_and_serving():
    row = {"input": "do beta", "output": CALL, "tools": ["gamma", "beta"]}
    example = sft_example(row, spec=SPEC)
    system = tools_prompt([TOOLS[2], TOOLS[1]])  # in the row's order
    assert example["prompt"] == [{"role": "system", "content": system}, {"role": "user", "content": "do beta"}]
    assert example["completion"] == [{"role": "assistant", "content": CALL}]
    assert SPEC.student_messages("do beta", ["gamma", "beta"]) == example["prompt"]

    shaped = answer_shape(ChatCompletionRequest.model_validate({
        "model": "m", "messages": [{"role": "user", "content": "do beta"}], "tools": [TOOLS[2], TOOLS[1]]}), "m", SPEC)
    assert shaped.prompt([{"role": "user", "content": "do beta"}]) == example["prompt"]

    assert sft_example(row, spec=BAKED)["prompt"] == [{"role": "user", "content": "do beta"}]
    assert SPEC.student_messages("hello", []) == [{"role": "user", "content": "hello"}]  # none offered
    assert SPEC.student_messages("x")[0]["content"] == tools_prompt(TOOLS)  # None: every tool


def test_the_teacher_and_the_untuned_student_are_offered_the_rows_tools():
    narrowed = SPEC.offering(["delta"])
    assert [t["function"]["name"] for t in narrowed.tools] == ["delta"] and SPEC.tools == TOOLS
    assert SPEC.offering(None) is SPEC and BAKED.offering(["delta"]) is BAKED
    assert Row(input="a", output="").tools is None


# --- serving --------------------------------------------------------------------------------------


def shape_for(**request: Any):
    body = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                 **request})
    return answer_shape(body, "m", SPEC)


def test_served_it_takes_any_valid_tools_and_shows_them_in_the_system_message():
    new = tool("cancel_table", people={"type": "integer"})
    shaped = shape_for(tools=[new])
    assert [t["function"]["name"] for t in shaped.tools] == ["cancel_table"]
    chat = shaped.prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "cancel it"}])
    assert chat[0] == {"role": "system", "content": tools_prompt([new]) + "\n\nBe brief."}
    assert chat[1:] == [{"role": "user", "content": "cancel it"}]
    call = shaped.call('{"name": "cancel_table", "arguments": {"people": 2}}')
    assert call is not None and call.function.name == "cancel_table"

    assert shape_for().prompt([{"role": "user", "content": "x"}])[0]["content"] == tools_prompt(TOOLS)
    none = shape_for(tools=[new], tool_choice="none")
    assert none.prompt([{"role": "user", "content": "x"}]) == [{"role": "user", "content": "x"}]
    chosen = shape_for(tools=[new, TOOLS[0]], tool_choice={"type": "function", "function": {"name": "cancel_table"}})
    assert chosen.prompt([{"role": "user", "content": "x"}])[0]["content"].startswith(TOOLS_PROMPT_HEADER)
    assert [t["function"]["name"] for t in chosen.tools] == ["cancel_table"]
    with pytest.raises(OpenAIError) as caught:
        shape_for(tools=[{"type": "function", "function": {"name": "has space"}}])
    assert caught.value.param == "tools"


def test_the_model_card_says_to_send_the_tools_as_the_system_message():
    text = card_answer_shape(SPEC.model_dump(mode="json"))
    assert TOOLS_PROMPT_HEADER in text and "system message" in text
    assert "send no tool list" in card_answer_shape(BAKED.model_dump(mode="json"))
