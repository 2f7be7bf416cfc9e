"""Dynamic batching of one student's requests: a thread that decodes them together.

Requests queue for the student's batcher thread. An idle batcher waits `SERVE_BATCH_WINDOW_MS`
after the first request for others to arrive (or until `SERVE_MAX_BATCH` have), then decodes them
together with `app.decoding`; while it decodes, a request that arrives joins at the next step
(continuous batching) as long as the batch has fewer than `SERVE_MAX_BATCH` rows, else it waits
for a row to end. Each request keeps its own `max_tokens`, sampling, stop strings, streaming and
cancellation, and a greedy answer is the one it would get alone (`app.batch_invariance`).

The thread lives as long as the batcher and also loads its student, so a served student's torch
work all runs on one thread. That matters on a CPU: each thread that runs torch gets its own
OpenMP pool, and once a process holds more OpenMP threads than cores, libgomp stops spin-waiting
between parallel regions. Measured on 2 cores, a decoding step then took 1.4-1.6x as long
(67 -> 95 ms alone, 86 -> 140 ms at 16 rows), which a batcher thread started per burst, beside
the request thread that had loaded the model, cost every request.

Plain Python: torch is imported by the thread (`app.decoding`), so the API starts without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Protocol

from app.answer_shapes.call_grammar import CallGrammar
from app.inference import Answer, Completion, Messages, Student, TextSink

log = logging.getLogger(__name__)


class Decoding(Protocol):
    """What the batcher drives: `app.decoding.Decoder`."""

    answers: list[Answer]

    def add_all(self, answers: list[Answer]) -> None: ...

    def step(self) -> list[Answer]: ...

    def clear(self) -> list[Answer]: ...


def _decoder(student: Student) -> Decoding:
    from app.decoding import Decoder

    return Decoder(student)


class Batcher:
    """Decodes the requests to one student in batches of at most `max_batch` (and at most what the
    student allows, `Student.batch_rows`), on a thread of its own that first loads the student
    with `load` and then serves until `close`."""

    def __init__(self, load: Callable[[], Student], max_batch: int, window_s: float,
                 decoder: Callable[[Student], Decoding] = _decoder) -> None:
        self.window_s = window_s
        self.max_batch = max(1, max_batch)
        self._load = load
        self._decoder = decoder
        self._student: Student | None = None
        self._load_error: BaseException | None = None
        self._loaded = threading.Event()
        self._cond = threading.Condition()
        self._queue: deque[tuple[float, Answer]] = deque()
        self._closed = False
        self._steps: Counter[int] = Counter()
        self._thread = threading.Thread(target=self._serve, name="student-batcher", daemon=True)
        self._thread.start()

    def ready(self) -> Student:
        """The loaded student, once it is; raises what loading it raised."""
        self._loaded.wait()
        if self._student is None:
            assert self._load_error is not None
            raise self._load_error
        return self._student

    def complete(self, messages: Messages, max_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
                 stop: Sequence[str] = (), on_text: TextSink | None = None,
                 cancelled: threading.Event | None = None, grammar: CallGrammar | None = None) -> Completion:
        """Answer a chat (blocking); see `app.inference.generate` for the options. The prompt is
        checked here, so `PromptTooLong` and chat template errors are raised in the caller's thread."""
        answer = Answer(self.ready(), messages, max_tokens, temperature, top_p, stop, on_text, cancelled, grammar)
        self.submit(answer)
        answer.ended.wait()
        return answer.completion()

    def submit(self, answer: Answer) -> None:
        """Queue an answer; its `ended` is set when it is done."""
        with self._cond:
            if not self._closed and self._thread.is_alive():
                self._queue.append((time.monotonic(), answer))
                self._cond.notify()
                return
        answer.fail(RuntimeError("this student's batcher has stopped"))

    def close(self) -> None:
        """Let the thread end once it has answered what it holds (an evicted student)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def batch_sizes(self) -> Counter[int]:
        """How many decoding steps ran with how many answers in them."""
        with self._cond:
            return Counter(self._steps)

    def _serve(self) -> None:
        try:
            student = self._load()
        except BaseException as exc:  # handed to every caller by `ready`
            self._load_error = exc
            with self._cond:
                self._closed = True
            return
        finally:
            self._loaded.set()
        self._student = student
        self.max_batch = max(1, min(self.max_batch, student.batch_rows))
        decoder = self._decoder(student)
        try:
            while (joining := self._joining(decoder)) is not None:
                self._add_all(decoder, joining)
                if decoder.answers:
                    rows = len(decoder.answers)
                    self._step(decoder)
                    with self._cond:
                        self._steps[rows] += 1
        except BaseException as exc:  # never leave a caller waiting
            with self._cond:
                self._closed = True
                queued = [answer for _, answer in self._queue]
                self._queue.clear()
            for answer in decoder.clear() + queued:
                answer.fail(exc)
            raise

    def _joining(self, decoder: Decoding) -> list[Answer] | None:
        """The queued answers that join the batch before the next step (waiting for a request, then
        out the window, when the batch is empty); None once closed with nothing left to do."""
        with self._cond:
            if not decoder.answers:
                while not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                deadline = self._queue[0][0] + self.window_s
                while len(self._queue) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            room = self.max_batch - len(decoder.answers)
            return [self._queue.popleft()[1] for _ in range(min(room, len(self._queue)))]

    @staticmethod
    def _add_all(decoder: Decoding, answers: list[Answer]) -> None:
        """Prefill the joining answers together; if that fails, one by one, so that only the
        answers whose own prefill fails fail (the batch goes on)."""
        if len(answers) > 1:
            try:
                decoder.add_all(answers)
                return
            except Exception:
                log.warning("prefilling %d answers together failed; prefilling them one by one", len(answers))
        for answer in answers:
            if answer.ended.is_set() or answer in decoder.answers:
                continue  # an earlier pack of the failed call took it
            try:
                decoder.add_all([answer])
            except Exception as exc:
                log.exception("prefilling an answer failed")
                answer.fail(exc)

    @staticmethod
    def _step(decoder: Decoding) -> None:
        try:
            decoder.step()
        except Exception as exc:  # e.g. out of memory: every answer of the batch fails, the batcher goes on
            log.exception("a decoding step of %d answers failed", len(decoder.answers))
            for answer in decoder.clear():
                answer.fail(exc)

