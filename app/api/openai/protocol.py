"""Request and response bodies of the OpenAI-compatible routes (`/v1/...`), in OpenAI's shapes.

Fields this service does not implement but that OpenAI clients commonly send (`user`,
`presence_penalty`, `seed`, `parallel_tool_calls`, ...) are accepted and ignored, as other
OpenAI-compatible servers do; the ones that would change what the caller gets back (`functions`,
`logprobs`, a `json_schema` response format) are refused. `tools`, `tool_choice` and a
`json_object` response format depend on the student's task type: the router checks them
against its plan (`tools.py`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from app.answer_shapes import call_text

#: Most tokens one completion may ask for.
MAX_TOKENS_LIMIT = 2048
#: Tokens a completion gets when the request does not say.
DEFAULT_MAX_TOKENS = 64


class TextPart(BaseModel):
    type: Literal["text"] = Field(description="Only text parts are supported.")
    text: str


class FunctionCall(BaseModel):
    name: str = Field(description="The tool's name.")
    arguments: str = Field(description="The arguments: a JSON object, as JSON text.")


class ToolCall(BaseModel):
    """One call of a function tool, as an assistant message carries it."""

    id: str = Field(description="`call_...`")
    type: Literal["function"] = "function"
    function: FunctionCall

    def as_call(self) -> dict[str, Any]:
        """`{"name", "arguments"}` with the arguments parsed (empty text is no arguments)."""
        text = self.function.arguments.strip()
        try:
            arguments = json.loads(text) if text else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise ValueError(f"the arguments of tool call {self.id!r} must be a JSON object (as JSON text)")
        return {"name": self.function.name, "arguments": arguments}


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # Before `content`, so that its check sees them.
    tool_calls: list[ToolCall] | None = Field(
        None, description="An assistant message's calls (sent back with the tool results); shown to the "
                          "student as the call texts it writes.")
    content: str | list[TextPart] | None = Field(
        None, validate_default=True,
        description="The text, or a list of text parts; only an assistant message with `tool_calls` may leave "
                    "it out.")
    tool_call_id: str | None = Field(None, description="A `tool` message: the call it answers.")
    name: str | None = Field(None, description="Accepted and ignored.")

    @field_validator("tool_calls")
    @classmethod
    def _calls(cls, value: list[ToolCall] | None, info: ValidationInfo) -> list[ToolCall] | None:
        if value and info.data.get("role") != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        for call in value or []:
            call.as_call()
        return value

    @field_validator("content")
    @classmethod
    def _has_text(cls, value: str | list[TextPart] | None, info: ValidationInfo) -> str | list[TextPart] | None:
        if value is None and not (info.data.get("role") == "assistant" and info.data.get("tool_calls")):
            raise ValueError("is required (only an assistant message with tool_calls may leave it out)")
        return value

    def text(self) -> str:
        content = self.content or ""
        return content if isinstance(content, str) else "".join(p.text for p in content)

    def as_template_message(self) -> dict[str, str]:
        """The message as the chat template takes it (`developer` is OpenAI's newer `system`). An
        assistant message's tool calls become its text, each call as `call_text` writes it (the
        way the student answers with a call), one per line after any text it has; a `tool`
        message keeps its role and its content (the tool's result)."""
        lines = [self.text()] if self.text() else []
        lines += [call_text(call.as_call()) for call in self.tool_calls or []]
        return {"role": "system" if self.role == "developer" else self.role, "content": "\n".join(lines)}


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="Send one last chunk with the token counts.")


#: What `stop` may be, as documented: `_stops` checks it (so an error names the field `stop`); an
#: empty stop sequence would end every answer before it starts.
STOP_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                         {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
                         {"type": "null"}]}


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    """`tool_choice` naming one tool: a call of any other is answered as text."""

    type: Literal["function"]
    function: NamedFunction


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"] = Field(
        description="`json_object`: only for extraction and tool-calling students; `json_schema` is refused.")
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request. `model` is the id of a finished job (see GET /v1/models)."""

    model: str = Field(min_length=1, description="A finished job's id.")
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT, description=f"Default {DEFAULT_MAX_TOKENS}.")
    max_completion_tokens: int | None = Field(
        None, ge=1, le=MAX_TOKENS_LIMIT, description="Newer name of `max_tokens`."
    )
    temperature: float = Field(
        0.0, ge=0, le=2, description="0 (the default here) is greedy, so answers repeat exactly."
    )
    top_p: float = Field(1.0, gt=0, le=1)
    stop: Annotated[str | list[str] | None, WithJsonSchema(STOP_SCHEMA)] = Field(
        None, description="Up to 4 strings; the answer ends before the first one.")
    n: int = Field(1, description="Only 1 is supported.")
    stream: bool = Field(
        False, description="Answer as server-sent events (`chat.completion.chunk`), ending with `data: [DONE]`."
    )
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = Field(
        None, description="Only for a tool-calling student, and only tools it was trained on (same name, same "
                          "parameters); a call of a tool left out is answered as text.")
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="`auto` (the default) or `none` (never `tool_calls`), or one trained tool by name; "
                          "`required` is refused.")
    parallel_tool_calls: bool | None = Field(None, description="Accepted and ignored: an answer is at most one call.")
    response_format: ResponseFormat | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field in ("functions", "function_call", "logprobs", "top_logprobs"):
                if data.get(field):
                    raise ValueError(f"`{field}` is not supported by this server")
        return data

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _choice(cls, value: Any) -> Any:
        # Before the union's own check, so that an unknown word is an error of `tool_choice` itself.
        if isinstance(value, str) and value not in ("none", "auto", "required"):
            raise ValueError("must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": "
                             "{\"name\": ...}}")
        return value

    @field_validator("n")
    @classmethod
    def _only_one(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty")
        return value

    def stop_sequences(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def answer_tokens(self) -> int:
        """How many tokens the answer may have."""
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS


FinishReason = Literal["stop", "length", "tool_calls"]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="The answer's text; null when it is a tool call.")
    tool_calls: list[ToolCall] | None = Field(None, description="The tool call the student answered with.")


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str = Field(description="`chatcmpl-...`")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(description="Unix time in seconds.")
    model: str
    choices: list[Choice]
    usage: Usage


class DeltaToolCall(ToolCall):
    index: int = 0


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str = Field(description="The job's id.")
    object: Literal["model"] = "model"
    created: int = Field(description="When the job finished, Unix time in seconds.")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorBody(BaseModel):
    message: str = Field(description="What went wrong, for people.")
    type: str = Field(description="`invalid_request_error`, `server_error`, ...")
    param: str | None = Field(None, description="The offending request field, if one.")
    code: str | None = Field(None, description="Machine-readable code, e.g. `model_not_found`.")


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error shape, used by every `/v1` route."""

    error: OpenAIErrorBody
