"""Serving finished students: a bounded LRU cache of loaded models, and one completion call.

A finished student is the merged Hugging Face folder its job stored as `model/` artifacts; its
model id is the job id. It is loaded on first use (float32 on the CPU, bfloat16 on a GPU that
supports it) and kept until `SERVE_MAX_MODELS` other students were used more recently.

Requests to one model are queued and run one at a time, in arrival order (a lock per model);
different models run in parallel. There is no micro-batching: one request at a time keeps a
greedy answer independent of whatever else arrived at the same moment (left padding changes
float rounding, and so sometimes the answer).

Plain Python, no FastAPI. torch and transformers are imported on the first load, so the API
process starts (and lists models) without them.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from app.artifacts import MODEL_FOLDER, folder_path
from app.config import get_settings
from app.storage import get_storage

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]
Messages = Sequence[Mapping[str, str]]
TextSink = Callable[[str], None]


class UnknownStudent(LookupError):
    """No student model is stored under this id."""


class StudentUnavailable(RuntimeError):
    """The student's files are there but could not be loaded (the log has the details)."""


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


def load_student(folder: Path) -> Student:
    """Load a causal LM and its tokenizer from a local folder for inference."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise StudentUnavailable(f"serving students needs torch and transformers (the `train` extra): {exc}") from exc
    if torch.cuda.is_available():
        device, dtype = "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    else:
        device, dtype = "cpu", torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    except Exception as exc:  # corrupt or foreign files fail in many ways
        log.exception("could not load the student in %s", folder)
        raise StudentUnavailable(f"the model could not be loaded ({type(exc).__name__})") from exc
    if not tokenizer.chat_template:
        raise StudentUnavailable("the model has no chat template")
    eos = model.generation_config.eos_token_id
    eos_ids = [*(eos if isinstance(eos, list) else [eos] if eos is not None else [])]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    return Student(model, tokenizer, eos_ids, getattr(model.config, "max_position_embeddings", None))


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
    prompt = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
    # The chat template already holds the special tokens; adding them again would double the BOS.
    input_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(student.model.device)
    prompt_len = input_ids.shape[1]
    if student.context is not None and prompt_len + max_tokens > student.context:
        raise PromptTooLong(
            f"the prompt is {prompt_len} tokens and max_tokens is {max_tokens}; "
            f"together they exceed the model's context of {student.context} tokens"
        )
    watch = _TextWatch(tokenizer, prompt_len, stop, on_text, cancelled)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0 else {"do_sample": False}
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


def student_folder(model_id: str) -> Path:
    """The local folder of the student stored under this id (a job id)."""
    try:
        job_id = uuid.UUID(model_id)
    except ValueError:
        raise UnknownStudent(model_id) from None
    folder = folder_path(get_storage(), job_id, MODEL_FOLDER)
    if not (folder / "config.json").is_file():
        raise UnknownStudent(model_id)
    return folder


@dataclass
class _Slot:
    model_id: str
    lock: threading.Lock
    student: Student | None = None


class StudentCache:
    """Loaded students, at most `max_models`; using one more unloads the least recently used.

    Each model has a lock: its requests run one at a time, and the first of them loads it while
    the others wait, so concurrent first requests load it once. A model evicted while answering
    finishes the requests that hold it; its memory is freed when they end.
    """

    def __init__(self, max_models: int, load: Callable[[Path], Student] = load_student) -> None:
        self.max_models = max_models
        self._load = load
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    def loaded(self) -> list[str]:
        """Ids of the students held (or being loaded), least recently used first."""
        with self._lock:
            return [slot.model_id for slot in self._slots.values()]

    def complete(self, model_id: str, messages: Messages, **options: Any) -> Completion:
        """Answer with this student, loading it first if needed; see `generate` for `options`."""
        folder = student_folder(model_id)
        model_id = str(uuid.UUID(model_id))
        try:
            # A resumed job that trained again rewrote its folder: a new version, loaded afresh.
            version = (folder / "config.json").stat().st_mtime_ns
        except FileNotFoundError:
            raise UnknownStudent(model_id) from None
        key = f"{model_id}@{version}"
        slot = self._slot(key, model_id)
        with slot.lock:
            if slot.student is None:
                try:
                    slot.student = self._load(folder)
                except BaseException:
                    self._drop(key, slot)
                    raise
            return generate(slot.student, messages, **options)

    def _slot(self, key: str, model_id: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(model_id, threading.Lock())
            self._slots.move_to_end(key)
            while len(self._slots) > self.max_models:
                self._slots.popitem(last=False)
            return slot

    def _drop(self, key: str, slot: _Slot) -> None:
        with self._lock:
            if self._slots.get(key) is slot:
                del self._slots[key]


@lru_cache
def get_cache() -> StudentCache:
    """The process-wide cache, sized by `SERVE_MAX_MODELS`."""
    return StudentCache(get_settings().serve_max_models)


def complete(model_id: str, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
             top_p: float = 1.0, stop: Sequence[str] = (), *, on_text: TextSink | None = None,
             cancelled: threading.Event | None = None) -> Completion:
    """Answer a chat with the student `model_id` (blocking; safe from any thread)."""
    return get_cache().complete(model_id, messages, max_tokens=max_tokens, temperature=temperature,
                                top_p=top_p, stop=stop, on_text=on_text, cancelled=cancelled)


def stream(model_id: str, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
           top_p: float = 1.0, stop: Sequence[str] = ()) -> Generator[str | Completion, None, None]:
    """`complete` in a background thread: yields each piece of the answer as it is final, then
    the `Completion`. Errors (unknown model, prompt too long) are raised by the first `next`.
    Closing the iterator early ends the generation at its next token."""
    items: queue.Queue[str | Completion | BaseException] = queue.Queue()
    cancelled = threading.Event()

    def run() -> None:
        try:
            items.put(complete(model_id, messages, max_tokens, temperature, top_p, stop,
                               on_text=items.put, cancelled=cancelled))
        except BaseException as exc:  # handed to the reader, who raises it
            items.put(exc)

    threading.Thread(target=run, name=f"student-{model_id[:8]}", daemon=True).start()
    try:
        while True:
            item = items.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, Completion):
                return
    finally:
        cancelled.set()
