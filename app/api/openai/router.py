"""OpenAI-compatible serving of finished students: `POST /v1/chat/completions`, `GET /v1/models`.

A model is a job that succeeded with a stored model folder; its id is the job id. Point any
OpenAI client at `<service>/v1` with an API key as its `api_key`, and pass the job id as `model`.
A caller sees and calls only their own students (an admin, everyone's).

What a request may ask of a student, and how its answer is shaped (tool calls, JSON answers),
depends on the student's task: the plan stage's `task_spec`, read with the job (`tools.py`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.auth import CallerDep, current_caller
from app.api.openai import serving
from app.api.openai.errors import OpenAIError, OpenAIRoute, internal_error, openai_error_responses
from app.api.openai.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    DeltaToolCall,
    FinishReason,
    ModelCard,
    ModelList,
    Usage,
)
from app.api.openai.tools import AnswerShape, answer_shape
from app.artifacts import MODEL_FOLDER
from app.auth import Caller
from app.db import session_scope
from app.models import Artifact, Job, JobStage, JobStatus, StageStatus
from app.specs import TaskSpec

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute,
                   dependencies=[Depends(current_caller)], responses=openai_error_responses(401))

T = TypeVar("T")

# Completions get threads of their own: each waits there while its student's batcher answers it
# (a waiting thread costs no CPU), and they must never use up the pool the job routes run in. 128
# keeps several students' full batches (SERVE_MAX_BATCH, 32 by default) and the requests queued behind them.
_GENERATION_THREADS = anyio.CapacityLimiter(128)


def _served_jobs(session: Session, caller: Caller, job_id: uuid.UUID | None = None) -> list[Job]:
    """The caller's succeeded jobs that stored a model folder (everyone's for an admin), most
    recently finished first."""
    query = (
        select(Job)
        .join(Artifact, Artifact.job_id == Job.id)
        .where(Job.status == JobStatus.SUCCEEDED.value, Artifact.name == f"{MODEL_FOLDER}/config.json")
        .order_by(Job.finished_at.desc(), Job.id)
    )
    if job_id is not None:
        query = query.where(Job.id == job_id)
    if not caller.admin:
        query = query.where(Job.owner == caller.owner)
    return list(session.execute(query).scalars())


def _model_not_found(model: str) -> OpenAIError:
    return OpenAIError(404, f"The model {model!r} does not exist: it must be the id of a job that succeeded "
                       "(see GET /v1/models)", code="model_not_found", param="model")


def _served_job(session: Session, model: str, caller: Caller) -> Job:
    try:
        job_id = uuid.UUID(model)
    except ValueError:
        raise _model_not_found(model) from None
    jobs = _served_jobs(session, caller, job_id)
    if not jobs:
        raise _model_not_found(model)
    return jobs[0]


def _card(job: Job) -> ModelCard:
    finished = job.finished_at or job.created_at
    return ModelCard(id=str(job.id), created=int(finished.timestamp()), owned_by=job.owner)


@router.get("/models", response_model=ModelList, responses=openai_error_responses())
def list_models(caller: CallerDep) -> ModelList:
    """Finished students the caller can call: their succeeded jobs with a model, newest first."""
    with session_scope() as session:
        return ModelList(data=[_card(job) for job in _served_jobs(session, caller)])


@router.get("/models/{model}", response_model=ModelCard, responses=openai_error_responses(404))
def get_model(model: str, caller: CallerDep) -> ModelCard:
    """One finished student."""
    with session_scope() as session:
        return _card(_served_job(session, model, caller))


@dataclass(frozen=True)
class ServedModel:
    """A model a request is for: its id (the job's) and its plan (None if it has none)."""

    id: str
    task_spec: TaskSpec | None


def _task_spec(session: Session, job_id: uuid.UUID) -> TaskSpec | None:
    """The task spec of the job's succeeded plan stage (what `GET /api/jobs/{id}` shows as
    `plan`), or None when there is none or it no longer reads as one."""
    metrics = session.execute(
        select(JobStage.metrics).where(JobStage.job_id == job_id, JobStage.name == "plan",
                                       JobStage.status == StageStatus.SUCCEEDED.value)
    ).scalar_one_or_none()
    raw = (metrics or {}).get("task_spec")
    if raw is None:
        return None
    try:
        return TaskSpec.model_validate(raw)
    except ValidationError:
        log.warning("job %s has a plan that is no task spec; serving it as plain text", job_id)
        return None


def _served_model(model: str, caller: Caller) -> ServedModel:
    """The job behind `model` with its plan, or a 404 (a short session of its own: none stays
    open while the answer is generated)."""
    with session_scope() as session:
        job = _served_job(session, model, caller)
        return ServedModel(str(job.id), _task_spec(session, job.id))


async def _off_loop(model_id: str, call: Callable[[], T]) -> T:
    """Run a blocking serving call in a generation thread; its failures as OpenAI errors."""
    try:
        return await anyio.to_thread.run_sync(call, limiter=_GENERATION_THREADS)
    except serving.UnknownStudent:
        raise _model_not_found(model_id) from None
    except serving.PromptTooLong as exc:
        raise OpenAIError(400, str(exc), code="context_length_exceeded", param="messages") from exc
    except serving.StudentUnavailable as exc:
        raise OpenAIError(503, f"model {model_id} is unavailable: {exc}", "server_error", "model_unavailable") from exc
    except Exception as exc:
        if _is_template_error(exc):  # e.g. a template that allows no `tool` messages, or roles out of turn
            raise OpenAIError(400, f"the chat template of model {model_id} cannot take these messages: {exc}",
                              param="messages") from exc
        raise


def _is_template_error(exc: Exception) -> bool:
    # jinja2's errors, raised by the chat template (jinja2 is only there with transformers).
    return any(cls.__module__.startswith("jinja2") for cls in type(exc).__mro__)


def _usage(completion: serving.Completion) -> Usage:
    return Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                 total_tokens=completion.prompt_tokens + completion.completion_tokens)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"description": "The answer; with `stream: true` server-sent events, each `data:` a "
                             "`chat.completion.chunk`, the last `data: [DONE]`",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **openai_error_responses(400, 404, 503),
    },
)
async def chat_completions(body: ChatCompletionRequest, caller: CallerDep) -> ChatCompletion | StreamingResponse:
    """Answer a chat with a finished student (OpenAI's chat completions API). Greedy unless
    `temperature` > 0; concurrent requests to one model are decoded together, each answer the
    same as alone. A tool-calling student's call comes back as `tool_calls`."""
    served = await run_in_threadpool(_served_model, body.model, caller)
    model_id = served.id
    shape = answer_shape(body, model_id, served.task_spec)
    messages = shape.prompt([m.as_template_message() for m in body.messages])
    options: dict[str, Any] = {"max_tokens": body.answer_tokens(), "temperature": body.temperature, "top_p": body.top_p,
               "stop": body.stop_sequences(), "grammar": shape.grammar()}
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        pieces = serving.stream(model_id, messages, **options)
        # The first piece comes after loading and the prompt checks, so their errors still get a status.
        first = await _off_loop(model_id, functools.partial(next, pieces))
        events = _events(pieces, first, ChatCompletionChunk(id=reply_id, created=created, model=model_id, choices=[]),
                         include_usage, shape)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    completion = await _off_loop(model_id, functools.partial(serving.complete, model_id, messages, **options))
    message, finish_reason = shape.message(completion.text, completion.finish_reason)
    return ChatCompletion(
        id=reply_id, created=created, model=model_id, usage=_usage(completion),
        choices=[Choice(index=0, message=message, finish_reason=finish_reason)],
    )


def _sse(chunk: ChatCompletionChunk) -> str:
    body = chunk.model_dump(mode="json")
    for choice in body["choices"]:  # OpenAI's deltas carry only the fields that changed
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return f"data: {json.dumps(body)}\n\n"


async def _events(pieces: Generator[str | serving.Completion, None, None], first: str | serving.Completion,
                  head: ChatCompletionChunk, include_usage: bool, shape: AnswerShape) -> AsyncIterator[str]:
    """The server-sent events of one streamed answer. Leaving early (the client went away)
    closes `pieces`, which stops the generation at its next token.

    An answer that may be a tool call is held back while it still may be one (`shape`): a call
    is one chunk with the role and the whole `tool_calls`, then `finish_reason: "tool_calls"`;
    held text that turns out to be none is sent as one chunk and the rest streams on."""

    def chunk(delta: Delta, finish_reason: FinishReason | None = None) -> str:
        return _sse(head.model_copy(update={"choices": [ChunkChoice(delta=delta, finish_reason=finish_reason)]}))

    try:
        held: str | None = "" if shape.can_call else None  # None: streaming text as it comes
        if held is None:
            yield chunk(Delta(role="assistant", content=""))
        item = first
        while isinstance(item, str):
            if held is None:
                yield chunk(Delta(content=item))
            elif shape.could_still_be_call(held + item):
                held += item
            else:
                yield chunk(Delta(role="assistant", content=held + item))
                held = None
            item = await _off_loop(head.model, functools.partial(next, pieces))
        finish_reason: FinishReason = item.finish_reason
        if held is not None:
            message, finish_reason = shape.message(item.text, item.finish_reason)
            if message.tool_calls:
                calls = [DeltaToolCall(index=i, **call.model_dump()) for i, call in enumerate(message.tool_calls)]
                yield chunk(Delta(role="assistant", tool_calls=calls))
            else:
                yield chunk(Delta(role="assistant", content=item.text))
        yield chunk(Delta(), finish_reason)
        if include_usage:
            yield _sse(head.model_copy(update={"usage": _usage(item)}))
    except OpenAIError as exc:  # the status line is sent already, so the error becomes an event
        yield f"data: {json.dumps(exc.body())}\n\n"
    except Exception:
        log.exception("streamed answer of model %s failed", head.model)
        yield f"data: {json.dumps(internal_error().body())}\n\n"
    finally:
        pieces.close()
    yield "data: [DONE]\n\n"
