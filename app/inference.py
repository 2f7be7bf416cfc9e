"""The one way a student is loaded and answers: used by the train and evaluate stages and by the
OpenAI-compatible `/v1` serving, so what evaluate scores is what `/v1` serves.

Plain Python. torch and transformers are imported on first use, so a process that never loads a
student (the API listing jobs) never pays for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.answer_shapes.call_grammar import CallGrammar, Prefix

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]
Messages = Sequence[Mapping[str, str]]
TextSink = Callable[[str], None]


class StudentUnavailable(RuntimeError):
    """The student could not be loaded. The message is safe to show anyone; `detail` (the
    underlying error, which may name local paths) is for logs and the job's own error."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class PromptTooLong(ValueError):
    """The prompt and the requested answer do not fit the student's context window."""


@dataclass(frozen=True)
class Completion:
    """One answer with its token counts and why it ended."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


@dataclass
class Student:
    """A loaded model with its tokenizer."""

    model: Any
    tokenizer: Any
    eos_ids: list[int]
    context: int | None  # most tokens the model attends to, prompt and answer together
    # Most answers it may decode at once with each one's tokens the same as alone (`app.batch_invariance`).
    batch_rows: int = 1


def compute_dtype() -> Any:
    """bfloat16 where the hardware computes in it natively (CUDA with bf16), else float32."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_student(source: str | Path, *, for_training: bool = False, batched: bool = False,
                 dtype: str | None = None) -> Student:
    """Load a causal LM and its tokenizer from a local folder or hub id.

    For inference the model goes to the GPU when there is one and is put in eval mode, and it must
    have a chat template; for training it stays where the trainer will place it. `batched` (the
    `/v1` server) prepares it to decode up to `SERVE_MAX_BATCH` answers together, each the same as
    alone (`app.batch_invariance`); that costs a single answer about a third more time on a CPU, so
    the stages, which answer one row at a time, load without it. A tokenizer without a pad token
    gets its end-of-sequence token as one. `dtype` ("float32", "bfloat16") overrides the
    precision `compute_dtype` picks.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise StudentUnavailable(f"loading students needs torch and transformers (the `train` extra): {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model: Any = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype) if dtype else compute_dtype())
    except Exception as exc:  # corrupt or foreign files fail in many ways
        log.exception("could not load the student %s", source)
        raise StudentUnavailable(f"the model could not be loaded ({type(exc).__name__})", str(exc)) from exc
    batch_rows = 1
    if not for_training:
        model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        if not tokenizer.chat_template:
            raise StudentUnavailable("the model has no chat template")
        batch_rows = _batchable(model) if batched else 1
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = model.generation_config.eos_token_id
    eos_ids = [*(eos if isinstance(eos, list) else [eos] if eos is not None else [])]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    return Student(model, tokenizer, eos_ids, getattr(model.config, "max_position_embeddings", None), batch_rows)


def _batchable(model: Any) -> int:
    """Prepare an inference model for batched decoding (`app.batch_invariance`): the most answers
    it may then decode at once, `SERVE_MAX_BATCH`, or 1 where it cannot be batched invariantly."""
    from app.batch_invariance import make_batch_invariant
    from app.config import get_settings
    from app.decoding import spliceable

    most = get_settings().serve_max_batch
    if most < 2 or not spliceable(model):
        return 1
    group = make_batch_invariant(model, most)
    if group is None:
        log.warning("%s cannot attend row by row; its answers are decoded one at a time", type(model).__name__)
        return 1
    return most


def prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The token ids of a chat, ready for the assistant's answer."""
    prompt = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
    # The chat template already holds the special tokens; adding them again would double the BOS.
    return list(tokenizer(prompt, add_special_tokens=False).input_ids)


def answer_budget(tokenizer: Any, answers: Sequence[str], most: int = 256) -> int:
    """How many new tokens an answer may take: the longest of `answers` (the data's expected
    answers), a quarter more and at least 4 more for the end of turn and near misses, at most `most`.
    Short on purpose: on-policy training samples this many tokens per answer at every step."""
    longest = max((len(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in answers), default=1)
    return min(most, longest + max(4, longest // 4))


#: New tokens of a free answer to a classification input (a label and the end of turn).
FREE_ANSWER_TOKENS = 16


def task_answer_budget(tokenizer: Any, task_type: str, answers: Sequence[str]) -> int:
    """The new tokens a student's answer gets when it is scored (evaluate, the export check): a
    classification answer `FREE_ANSWER_TOKENS`; an extraction's or a tool call's twice
    `answer_budget` (at most 256: its JSON values may be longer than the expected ones, a date
    written out, and cut off the object would not parse), else `answer_budget`."""
    kind = getattr(task_type, "value", task_type)
    if kind == "classification":
        return FREE_ANSWER_TOKENS
    budget = answer_budget(tokenizer, answers)
    return min(256, 2 * budget) if kind in ("extraction", "tool_calling") else budget


class _TextWatch:
    """Told the answer's tokens after every new one: decodes the answer so far, ends it at the
    first stop string, and hands on the text that can no longer change."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], on_text: TextSink | None) -> None:
        self.tokenizer, self.stop, self.on_text = tokenizer, [s for s in stop if s], on_text
        self.text = ""
        self.sent = 0
        self.stopped = False  # a stop string was reached

    def update(self, ids: list[int], final: bool) -> None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        cuts = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if cuts:
            text, self.stopped, final = text[: min(cuts)], True, True
        self.text = text
        ready = len(text) if final else len(text) - self._unsettled(text)
        if ready > self.sent:
            if self.on_text is not None:
                self.on_text(text[self.sent:ready])
            self.sent = ready

    def _unsettled(self, text: str) -> int:
        """How many trailing characters may still change: the start of a stop string, or an
        incomplete UTF-8 sequence (decoded as U+FFFD until its last byte arrives)."""
        held = len(text) - len(text.rstrip("\ufffd"))
        for stop in self.stop:
            for k in range(len(stop) - 1, held, -1):
                if text.endswith(stop[:k]):
                    held = k
                    break
        return held


class Answer:
    """One chat being answered: its prompt and options, the tokens chosen so far, how it ended.

    Made in the caller's thread (so a prompt that does not fit, or a chat template that refuses
    the messages, fails there); `app.decoding` chooses its tokens, alone or in a batch, and hands
    each to `add`. `ended` is set once it is complete or failed."""

    def __init__(self, student: Student, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, stop: Sequence[str] = (), on_text: TextSink | None = None,
                 cancelled: threading.Event | None = None, grammar: CallGrammar | None = None) -> None:
        self.prompt = prompt_ids(student.tokenizer, messages)
        if student.context is not None and len(self.prompt) + max_tokens > student.context:
            raise PromptTooLong(
                f"the prompt is {len(self.prompt)} tokens and max_tokens is {max_tokens}; "
                f"together they exceed the model's context of {student.context} tokens"
            )
        self.max_tokens, self.temperature, self.top_p = max_tokens, temperature, top_p
        self.eos = frozenset(student.eos_ids)
        self.cancelled = cancelled
        self.watch = _TextWatch(student.tokenizer, stop, on_text)
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.grammar = grammar
        self.tokenizer = student.tokenizer
        self._text: tuple[int, str] = (0, "")  # the decoded answer, and how many ids it decodes

    def allows(self, token: int) -> bool:
        """Whether `token` may come next under the answer's grammar (always, without one): the
        answer with it must still be able to become a valid answer, and an end-of-turn token
        may only end one that is. A token that adds no text is refused, as llama.cpp does."""
        if self.grammar is None:
            return True
        text = self.decoded()
        if token in self.eos:
            return self.grammar.check(text) is Prefix.DONE
        longer = self._decode([*self.ids, token])
        if longer == text and not self._decode([token]):
            return False
        return self.grammar.check(longer) is not Prefix.INVALID

    def decoded(self) -> str:
        """The answer's tokens so far as text (before any stop string is cut)."""
        if self._text[0] != len(self.ids):
            self._text = (len(self.ids), self._decode(self.ids))
        return self._text[1]

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def add(self, token: int) -> bool:
        """Take the next token; True when that ended the answer (end of turn, `max_tokens`, a stop
        string, cancelled, or `on_text` failed)."""
        self.ids.append(token)
        try:
            if token in self.eos or len(self.ids) >= self.max_tokens:
                self.watch.update(self.ids, final=True)
            else:
                self.watch.update(self.ids, final=False)
                if not (self.watch.stopped or self.is_cancelled()):
                    return False
        except Exception as exc:  # the caller's `on_text`: it fails this answer only
            self.error = exc
        self.ended.set()
        return True

    def is_cancelled(self) -> bool:
        return self.cancelled is not None and self.cancelled.is_set()

    def end(self) -> None:
        """End the answer where it is (one cancelled before its first token)."""
        self.watch.update(self.ids, final=True)
        self.ended.set()

    def fail(self, error: BaseException) -> None:
        """End the answer with `error` (raised by `completion`)."""
        self.error = error
        self.ended.set()

    def completion(self) -> Completion:
        """The answer with its token counts (raises its error, if it failed)."""
        if self.error is not None:
            raise self.error
        ids = self.ids
        ended = self.watch.stopped or (bool(ids) and ids[-1] in self.eos) or len(ids) < self.max_tokens
        return Completion(self.watch.text, len(self.prompt), len(ids), "stop" if ended else "length")


def generate(student: Student, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
             top_p: float = 1.0, stop: Sequence[str] = (), on_text: TextSink | None = None,
             cancelled: threading.Event | None = None, grammar: CallGrammar | None = None) -> Completion:
    """Answer a chat with a loaded student: `app.decoding`'s loop with a batch of one (what `/v1`
    runs with several). The caller makes sure nobody else uses the student meanwhile. Greedy when
    `temperature` is 0, else sampled with `top_p`. `on_text` gets the answer piece by piece as
    it is final; setting `cancelled` ends the generation at its next token. With a `grammar`
    (a tool-calling student's), every token keeps the answer valid under it."""
    from app.decoding import decode

    answer = Answer(student, messages, max_tokens, temperature, top_p, stop, on_text, cancelled, grammar)
    decode(student, answer)
    return answer.completion()
