"""Serving finished students: a bounded LRU cache of loaded models, and one completion call.

A finished student is the merged Hugging Face folder its job stored as `model/` artifacts; its
model id is the job id. It is loaded on first use (float32 on the CPU, bfloat16 on a GPU that
supports it) and kept until `SERVE_MAX_MODELS` other students were used more recently.

Requests to one model are decoded together by its batcher (`batching.py`: dynamic, continuous
batching of up to `SERVE_MAX_BATCH` answers, each keeping its own options); a greedy answer is
still the one it would get alone (`app.batch_invariance`). Different models run in parallel.

Plain Python, no FastAPI. Loading and generation are `app.inference`'s, the same code the
evaluate stage scores a student with; torch and transformers are imported on the first load, so
the API process starts (and lists models) without them.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.answer_shapes.call_grammar import CallGrammar
from app.api.openai.batching import Batcher
from app.artifacts import MODEL_FOLDER, folder_path
from app.config import get_settings
from app.inference import (
    Completion,
    Messages,
    PromptTooLong,
    Student,
    StudentUnavailable,
    TextSink,
    load_student,
)
from app.storage import get_storage

__all__ = ["Completion", "PromptTooLong", "Student", "StudentCache", "StudentUnavailable", "UnknownStudent",
           "complete", "get_cache", "stream"]

log = logging.getLogger(__name__)


class UnknownStudent(LookupError):
    """No student model is stored under this id."""


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
    batcher: Batcher | None = None


def batcher_from_settings(load: Callable[[], Student]) -> Batcher:
    """A batcher that loads its student with `load` on its own thread, sized by `SERVE_MAX_BATCH`
    and `SERVE_BATCH_WINDOW_MS`."""
    settings = get_settings()
    return Batcher(load, settings.serve_max_batch, settings.serve_batch_window_ms / 1000)


def _load_batched(folder: Path) -> Student:
    """A student ready to answer several requests together (`load_student(..., batched=True)`),
    in the precision `SERVE_DTYPE` asks for."""
    dtype = get_settings().serve_dtype
    return load_student(folder, batched=True, dtype=None if dtype == "auto" else dtype)


class StudentCache:
    """Loaded students, at most `max_models`; using one more unloads the least recently used.

    Each model has a lock, held while it loads: the first request loads it while the others
    wait, so concurrent first requests load it once. Its requests are then answered by its
    batcher. A model evicted while answering finishes the requests it holds; its memory is freed
    when they end.
    """

    def __init__(self, max_models: int, load: Callable[[Path], Student] = _load_batched,
                 batcher: Callable[[Callable[[], Student]], Batcher] = batcher_from_settings) -> None:
        self.max_models = max_models
        self._load = load
        self._batcher = batcher
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    def loaded(self) -> list[str]:
        """Ids of the students held (or being loaded), least recently used first."""
        with self._lock:
            return [slot.model_id for slot in self._slots.values()]

    def batch_sizes(self, model_id: str) -> Counter[int]:
        """How many decoding steps the loaded student `model_id` ran with how many answers."""
        with self._lock:
            batchers = [slot.batcher for slot in self._slots.values() if slot.model_id == model_id and slot.batcher]
        total: Counter[int] = Counter()
        for batcher in batchers:
            total.update(batcher.batch_sizes())
        return total

    def complete(self, model_id: str, messages: Messages, **options: Any) -> Completion:
        """Answer with this student, loading it first if needed; see `app.inference.generate`
        for `options`."""
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
            if slot.batcher is None:
                # The batcher's own thread loads the student (see `batching.py` for why).
                batcher = self._batcher(functools.partial(self._load, folder))
                try:
                    batcher.ready()
                except BaseException:
                    batcher.close()
                    self._drop(key, slot)
                    raise
                slot.batcher = batcher
            batcher = slot.batcher
        return batcher.complete(messages, **options)

    def _slot(self, key: str, model_id: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(model_id, threading.Lock())
            self._slots.move_to_end(key)
            while len(self._slots) > self.max_models:
                _, evicted = self._slots.popitem(last=False)
                if evicted.batcher is not None:
                    evicted.batcher.close()
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
             cancelled: threading.Event | None = None, grammar: CallGrammar | None = None) -> Completion:
    """Answer a chat with the student `model_id` (blocking; safe from any thread)."""
    return get_cache().complete(model_id, messages, max_tokens=max_tokens, temperature=temperature,
                                top_p=top_p, stop=stop, on_text=on_text, cancelled=cancelled, grammar=grammar)


def stream(model_id: str, messages: Messages, max_tokens: int = 64, temperature: float = 0.0,
           top_p: float = 1.0, stop: Sequence[str] = (),
           grammar: CallGrammar | None = None) -> Generator[str | Completion, None, None]:
    """`complete` in a background thread: yields each piece of the answer as it is final, then
    the `Completion`. Errors (unknown model, prompt too long) are raised by the first `next`.
    Closing the iterator early ends the generation at its next token."""
    items: queue.Queue[str | Completion | BaseException] = queue.Queue()
    cancelled = threading.Event()

    def run() -> None:
        try:
            items.put(complete(model_id, messages, max_tokens, temperature, top_p, stop,
                               on_text=items.put, cancelled=cancelled, grammar=grammar))
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
