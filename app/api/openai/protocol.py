"""Request and response bodies of the OpenAI-compatible routes (`/v1/...`), in OpenAI's shapes.

Fields this service does not implement but that OpenAI clients commonly send (`user`,
`presence_penalty`, `seed`, ...) are accepted and ignored, as other OpenAI-compatible servers do;
the ones that would change what the caller gets back (`tools`, `logprobs`, JSON output) are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema, field_validator, model_validator

#: Most tokens one completion may ask for.
MAX_TOKENS_LIMIT = 2048
#: Tokens a completion gets when the request does not say.
DEFAULT_MAX_TOKENS = 64


class TextPart(BaseModel):
    type: Literal["text"] = Field(description="Only text parts are supported.")
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] = Field(description="The text, or a list of text parts.")

    def as_template_message(self) -> dict[str, str]:
        """The message as the chat template takes it (`developer` is OpenAI's newer `system`)."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="Send one last chunk with the token counts.")


#: What `stop` may be, as documented: `_stops` checks it (so an error names the field `stop`); an
#: empty stop sequence would end every answer before it starts.
STOP_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                         {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
                         {"type": "null"}]}


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

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field in ("tools", "functions", "logprobs", "top_logprobs"):
                if data.get(field):
                    raise ValueError(f"`{field}` is not supported by this server")
            fmt = data.get("response_format")
            if isinstance(fmt, dict) and fmt.get("type", "text") != "text":
                raise ValueError("only `response_format` {\"type\": \"text\"} is supported by this server")
        return data

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


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
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


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
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
