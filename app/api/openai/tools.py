"""What a request may ask of a student given its task type, and how its answer text becomes an
OpenAI message: tool calls for a tool-calling student, JSON answers for an extraction one.

Plain functions of the student's plan (`app.specs.TaskSpec`, the plan stage's `task_spec`) and
the request, no I/O; the router calls them.

Tool calling
    A tuned tool-calling student has its tools in its weights: it gets the raw messages, never a
    tool list, and answers a request that needs a tool with the call's JSON text
    (`app.answer_shapes.call_text`) and any other with plain text. It is decoded under the
    callable tools' grammar (`app.answer_shapes.call_grammar`): an answer that starts as a call
    is a valid call of one of them. An answer that is a valid call
    (`check_call`, no problems) of a tool the request allows is returned as OpenAI's
    `tool_calls` with `content: null` and `finish_reason: "tool_calls"`; any other answer
    (plain text, a broken call, a call of a tool the request left out) as `content`, the text
    exactly as the student wrote it. The tools a request allows: every trained tool, narrowed
    to the request's `tools` when it sends some, to the one tool `tool_choice` names, and to
    none with `tool_choice: "none"`. With `tool_choice` `"required"` or a named function the
    grammar leaves out plain text: the answer is a call (of the named function), as OpenAI's
    models answer.

    The request's `tools` must each be a trained tool: the same name and, after
    `validate_tools` normalisation, the same `parameters` (descriptions and `strict` may
    differ); anything else, or `tools` for a student of another type, is a 400 with
    `param: "tools"`.

JSON answers
    `response_format: {"type": "json_object"}` is accepted for extraction and tool-calling
    students, whose answers are JSON objects already: the answer is returned as the student wrote
    it, even when it is not a JSON object (the request does not constrain the generation). For
    other students, and `json_schema` for every student, it is a 400 with `param: "response_format"`.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.answer_shapes import ToolsError, check_call, tools_prompt, validate_tools
from app.answer_shapes.call_grammar import CallGrammar
from app.api.openai.errors import OpenAIError
from app.api.openai.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    FinishReason,
    FunctionCall,
    ToolCall,
)
from app.specs import TaskSpec, TaskType

log = logging.getLogger(__name__)

#: How an answer that may still become a call can start (after white space): a JSON object, a
#: ```json fence or a <tool_call> tag, the wrappers `check_call` tolerates.
_CALL_STARTS = ("{", "`", "<")


def _bad_request(message: str, param: str) -> OpenAIError:
    return OpenAIError(400, message, param=param)


def _kind(spec: TaskSpec | None) -> str:
    if spec is None:
        return "a student without a stored plan"
    return f"a {spec.task_type.value.replace('_', '-')} student"


def trained_tools(spec: TaskSpec | None) -> list[dict[str, Any]]:
    """The normalised tools a tool-calling student was trained on; none for any other."""
    if spec is None or spec.task_type != TaskType.TOOL_CALLING or not spec.tools:
        return []
    try:
        return validate_tools(spec.tools)
    except ToolsError as exc:  # the API checked them when the job was made; a plan edited since is served as text
        log.warning("the planned tools are invalid (%s); answering with text only", exc)
        return []


def _name(tool: dict[str, Any]) -> str:
    return str(tool["function"]["name"])


def offered_tools(requested: list[dict[str, Any]] | None, trained: list[dict[str, Any]],
                  model: str, spec: TaskSpec | None) -> list[dict[str, Any]]:
    """The trained tools the request offers (all of them when it sends no `tools`), or a 400
    naming the first requested tool that is not one of them; for a student that reads its tools
    from the prompt, the requested tools themselves."""
    if not requested:
        return trained
    if not trained:
        raise _bad_request(f"`tools` are only for tool-calling students; model {model} is {_kind(spec)}", "tools")
    try:
        tools = validate_tools(requested)
    except ToolsError as exc:
        raise _bad_request(str(exc), "tools") from None
    if spec is not None and spec.tools_in_prompt:
        return tools
    known = {_name(t): t for t in trained}
    for index, tool in enumerate(tools):
        name = _name(tool)
        if name not in known:
            raise _bad_request(f"tools[{index}]: model {model} was not trained on a tool {name!r} "
                               f"(its tools: {', '.join(known)})", "tools")
        if tool["function"]["parameters"] != known[name]["function"]["parameters"]:
            raise _bad_request(f"tools[{index}]: the parameters of {name!r} differ from the ones model {model} "
                               "was trained on", "tools")
    names = {_name(t) for t in tools}
    return [t for t in trained if _name(t) in names]


def callable_tools(body: ChatCompletionRequest, model: str, spec: TaskSpec | None) -> list[dict[str, Any]]:
    """The tools an answer of this request may call, narrowed by `tools` and `tool_choice`
    (empty: every answer is text), or a 400 for `tools`/`tool_choice` the student cannot take."""
    trained = trained_tools(spec)
    offered = offered_tools(body.tools, trained, model, spec)
    choice = body.tool_choice
    if choice is None or choice == "auto":
        return offered
    if choice == "none":
        return []
    if choice == "required":
        if not offered:
            raise _bad_request(f"tool_choice 'required' needs a tool-calling student; model {model} is {_kind(spec)}",
                               "tool_choice")
        return offered
    name = choice.function.name
    if name not in {_name(t) for t in trained} and not (spec is not None and spec.tools_in_prompt):
        trained_names = f" (its tools: {', '.join(_name(t) for t in trained)})" if trained else ""
        raise _bad_request(f"tool_choice: model {model} ({_kind(spec)}) was not trained on a tool {name!r}"
                           + trained_names, "tool_choice")
    chosen = [t for t in offered if _name(t) == name]
    if not chosen:
        raise _bad_request(f"tool_choice names {name!r}, which is not in `tools`", "tool_choice")
    return chosen


def check_response_format(body: ChatCompletionRequest, model: str, spec: TaskSpec | None) -> None:
    """A 400 for a response format this student cannot give: `json_schema` always, `json_object`
    unless it is an extraction or tool-calling student."""
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return
    if fmt.type == "json_schema":
        raise _bad_request("response_format json_schema is not supported by this server; an extraction student "
                           "answers with the JSON object it was trained on (use json_object)", "response_format")
    if spec is None or spec.task_type not in (TaskType.EXTRACTION, TaskType.TOOL_CALLING):
        raise _bad_request("response_format json_object is only for extraction and tool-calling students; "
                           f"model {model} is {_kind(spec)}", "response_format")


@dataclass(frozen=True)
class AnswerShape:
    """How the answers of one request are returned: `tools` are the ones a call may use (empty:
    always text)."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    #: The student reads the tools it may call from the prompt (`tools_in_prompt`).
    in_prompt: bool = False
    #: The answer must be a call (`tool_choice` "required" or a named function).
    must_call: bool = False

    @property
    def can_call(self) -> bool:
        return bool(self.tools)

    def prompt(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """The chat the student is given: the request's messages, after the system message that
        shows the callable tools to a student trained with them in its prompt."""
        if not self.in_prompt or not self.tools:
            return messages
        block = tools_prompt(self.tools)
        if messages and messages[0]["role"] == "system":
            first, rest = messages[0], messages[1:]
            return [{"role": "system", "content": f"{block}\n\n{first['content']}" if first["content"] else block},
                    *rest]
        return [{"role": "system", "content": block}, *messages]

    def grammar(self) -> CallGrammar | None:
        """The grammar the answer is decoded under: the callable tools' (`call_grammar`), so a
        call the student starts is a valid call of one of them; none when it may not call."""
        return CallGrammar(self.tools, text=not self.must_call) if self.tools else None

    def could_still_be_call(self, text: str) -> bool:
        """Whether an answer starting with `text` may yet be a call: only while it is blank or
        starts like a JSON object or one of the wrappers `check_call` tolerates."""
        start = text.lstrip()
        return self.can_call and (not start or start.startswith(_CALL_STARTS))

    def call(self, text: str) -> ToolCall | None:
        """The answer as a tool call, or None when it is no valid call of an allowed tool."""
        if not self.could_still_be_call(text):
            return None
        checked = check_call(text, self.tools)
        if checked.call is None or checked.problems:
            return None
        arguments = json.dumps(checked.call["arguments"], ensure_ascii=False, sort_keys=True)
        return ToolCall(id=new_call_id(), function=FunctionCall(name=checked.call["name"], arguments=arguments))

    def message(self, text: str, finish_reason: FinishReason) -> tuple[AssistantMessage, FinishReason]:
        """The assistant message and finish reason of a finished answer."""
        call = self.call(text)
        if call is None:
            return AssistantMessage(content=text), finish_reason
        return AssistantMessage(content=None, tool_calls=[call]), "tool_calls"


def new_call_id() -> str:
    """`call_` and 24 hex digits, like OpenAI's."""
    return f"call_{uuid.uuid4().hex[:24]}"


def answer_shape(body: ChatCompletionRequest, model: str, spec: TaskSpec | None) -> AnswerShape:
    """Check the request's tools, tool choice and response format against the student's plan
    (400s in OpenAI's shape) and return how its answer is shaped."""
    check_response_format(body, model, spec)
    tools = callable_tools(body, model, spec)
    must_call = bool(tools) and body.tool_choice not in (None, "auto", "none")
    return AnswerShape(tools, in_prompt=spec is not None and spec.tools_in_prompt, must_call=must_call)
