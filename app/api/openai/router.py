"""OpenAI-compatible serving of finished students: `POST /v1/chat/completions`, `GET /v1/models`.

A model is a job that succeeded with a stored model folder; its id is the job id. Point any
OpenAI client at `<service>/v1` with an API key as its `api_key`, and pass the job id as `model`.
A caller sees and calls only their own students (an admin, everyone's).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.auth import CallerDep, current_caller
from app.api.openai import serving
from app.api.openai.errors import OpenAIError, OpenAIRoute, internal_error, openai_error_responses
from app.api.openai.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
)
from app.artifacts import MODEL_FOLDER
from app.auth import Caller
from app.db import session_scope
from app.models import Artifact, Job, JobStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute,
                   dependencies=[Depends(current_caller)], responses=openai_error_responses(401))

T = TypeVar("T")

# Completions get threads of their own: requests queued behind a busy model wait in them, and
# must never use up the pool the job routes run in.
_GENERATION_THREADS = anyio.CapacityLimiter(8)


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


def _model_id(model: str, caller: Caller) -> str:
    """The job id behind `model`, or a 404 (a short session of its own: none stays open while
    the answer is generated)."""
    with session_scope() as session:
        return str(_served_job(session, model, caller).id)


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
    `temperature` > 0; requests to one model are answered one at a time."""
    model_id = await run_in_threadpool(_model_id, body.model, caller)
    messages = [m.as_template_message() for m in body.messages]
    options: dict[str, Any] = {"max_tokens": body.answer_tokens(), "temperature": body.temperature, "top_p": body.top_p,
               "stop": body.stop_sequences()}
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        pieces = serving.stream(model_id, messages, **options)
        # The first piece comes after loading and the prompt checks, so their errors still get a status.
        first = await _off_loop(model_id, functools.partial(next, pieces))
        events = _events(pieces, first, ChatCompletionChunk(id=reply_id, created=created, model=model_id, choices=[]),
                         include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    completion = await _off_loop(model_id, functools.partial(serving.complete, model_id, messages, **options))
    return ChatCompletion(
        id=reply_id, created=created, model=model_id, usage=_usage(completion),
        choices=[Choice(index=0, message=AssistantMessage(content=completion.text),
                        finish_reason=completion.finish_reason)],
    )


def _sse(chunk: ChatCompletionChunk) -> str:
    body = chunk.model_dump(mode="json")
    for choice in body["choices"]:  # OpenAI's deltas carry only the fields that changed
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return f"data: {json.dumps(body)}\n\n"


async def _events(pieces: Generator[str | serving.Completion, None, None], first: str | serving.Completion,
                  head: ChatCompletionChunk, include_usage: bool) -> AsyncIterator[str]:
    """The server-sent events of one streamed answer. Leaving early (the client went away)
    closes `pieces`, which stops the generation at its next token."""
    try:
        yield _sse(head.model_copy(update={"choices": [ChunkChoice(delta=Delta(role="assistant", content=""))]}))
        item = first
        while isinstance(item, str):
            yield _sse(head.model_copy(update={"choices": [ChunkChoice(delta=Delta(content=item))]}))
            item = await _off_loop(head.model, functools.partial(next, pieces))
        yield _sse(head.model_copy(update={"choices": [ChunkChoice(delta=Delta(), finish_reason=item.finish_reason)]}))
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
