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


def compute_dtype() -> Any:
    """bfloat16 where the hardware computes in it natively (CUDA with bf16), else float32."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_student(source: str | Path, *, for_training: bool = False) -> Student:
    """Load a causal LM and its tokenizer from a local folder or hub id.

    For inference the model goes to the GPU when there is one and is put in eval mode, and it must
    have a chat template; for training it stays where the trainer will place it. A tokenizer
    without a pad token gets its end-of-sequence token as one.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise StudentUnavailable(f"loading students needs torch and transformers (the `train` extra): {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=compute_dtype())
    except Exception as exc:  # corrupt or foreign files fail in many ways
        log.exception("could not load the student %s", source)
        raise StudentUnavailable(f"the model could not be loaded ({type(exc).__name__})", str(exc)) from exc
    if not for_training:
        model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        if not tokenizer.chat_template:
            raise StudentUnavailable("the model has no chat template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = model.generation_config.eos_token_id
    eos_ids = [*(eos if isinstance(eos, list) else [eos] if eos is not None else [])]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    return Student(model, tokenizer, eos_ids, getattr(model.config, "max_position_embeddings", None))


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
    """Called by `generate` after every new token (as a stopping criterion): decodes the answer
    so far, ends it at the first stop string, and hands on the text that can no longer change."""

    def __init__(self, tokenizer: Any, prompt_len: int, stop: Sequence[str],
                 on_text: TextSink | None, cancelled: threading.Event | None) -> None:
        self.tokenizer, self.prompt_len, self.stop = tokenizer, prompt_len, [s for s in stop if s]
        self.on_text, self.cancelled = on_text, cancelled
        self.text = ""
        self.sent = 0
        self.stopped = False  # a stop string was reached

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        if not self.stopped:
            self.update(input_ids[0, self.prompt_len:].tolist(), final=False)
        done = self.stopped or (self.cancelled is not None and self.cancelled.is_set())
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

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


def generate(student: Student, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
             top_p: float = 1.0, stop: Sequence[str] = (), on_text: TextSink | None = None,
             cancelled: threading.Event | None = None) -> Completion:
    """Answer a chat with a loaded student; the caller makes sure nobody else uses it meanwhile.
    Greedy when `temperature` is 0. `on_text` gets the answer piece by piece as it is final;
    setting `cancelled` ends the generation at its next token."""
    import torch

    tokenizer = student.tokenizer
    input_ids = torch.tensor([prompt_ids(tokenizer, messages)], device=student.model.device)
    prompt_len = input_ids.shape[1]
    if student.context is not None and prompt_len + max_tokens > student.context:
        raise PromptTooLong(
            f"the prompt is {prompt_len} tokens and max_tokens is {max_tokens}; "
            f"together they exceed the model's context of {student.context} tokens"
        )
    watch = _TextWatch(tokenizer, prompt_len, stop, on_text, cancelled)
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0
        else {"do_sample": False})
    with torch.inference_mode():
        output = student.model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_tokens,
            eos_token_id=student.eos_ids, pad_token_id=student.eos_ids[0] if student.eos_ids else None,
            stopping_criteria=[watch], **sampling,
        )
    ids = output[0, prompt_len:].tolist()
    if not watch.stopped:
        watch.update(ids, final=True)
    ended = watch.stopped or (bool(ids) and ids[-1] in student.eos_ids) or len(ids) < max_tokens
    return Completion(watch.text, prompt_len, len(ids), "stop" if ended else "length")
