"""Dynamic batching of one student's requests: a thread that decodes them together.

Requests queue for the student's batcher thread. An idle batcher waits `SERVE_BATCH_WINDOW_MS`
after the first request for others to arrive (or until `SERVE_MAX_BATCH` have), then decodes them
together with `app.decoding`; while it decodes, a request that arrives joins at the next step
(continuous batching) as long as the batch has fewer than `SERVE_MAX_BATCH` rows, else it waits
for a row to end. Each request keeps its own `max_tokens`, sampling, stop strings, streaming and
cancellation, and a greedy answer is the one it would get alone (`app.batch_invariance`). The
thread ends when nothing is left to do and starts again with the next request.

Plain Python: torch is imported by the thread (`app.decoding`), so the API starts without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Protocol

from app.inference import Answer, Completion, Messages, Student, TextSink

log = logging.getLogger(__name__)


class Decoding(Protocol):
    """What the batcher drives: `app.decoding.Decoder`."""

    answers: list[Answer]

    def add(self, answer: Answer) -> bool: ...

    def step(self) -> list[Answer]: ...

    def clear(self) -> list[Answer]: ...


def _decoder(student: Student) -> Decoding:
    from app.decoding import Decoder

    return Decoder(student)


class Batcher:
    """Decodes the requests to one loaded student in batches of at most `max_batch` (and at most
    what the student allows, `Student.batch_rows`), in a thread of its own."""

    def __init__(self, student: Student, max_batch: int, window_s: float,
                 decoder: Callable[[Student], Decoding] = _decoder) -> None:
        self.student = student
        self.max_batch = max(1, min(max_batch, student.batch_rows))
        self.window_s = window_s
        self._decoder = decoder
        self._cond = threading.Condition()
        self._queue: deque[tuple[float, Answer]] = deque()
        self._running = False
        self._steps: Counter[int] = Counter()

    def complete(self, messages: Messages, max_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
                 stop: Sequence[str] = (), on_text: TextSink | None = None,
                 cancelled: threading.Event | None = None) -> Completion:
        """Answer a chat (blocking); see `app.inference.generate` for the options. The prompt is
        checked here, so `PromptTooLong` and chat template errors are raised in the caller's thread."""
        answer = Answer(self.student, messages, max_tokens, temperature, top_p, stop, on_text, cancelled)
        self.submit(answer)
        answer.ended.wait()
        return answer.completion()

    def submit(self, answer: Answer) -> None:
        """Queue an answer; its `ended` is set when it is done."""
        with self._cond:
            self._queue.append((time.monotonic(), answer))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="student-batcher", daemon=True).start()
            self._cond.notify()

    def batch_sizes(self) -> Counter[int]:
        """How many decoding steps ran with how many answers in them."""
        with self._cond:
            return Counter(self._steps)

    def _run(self) -> None:
        decoder = self._decoder(self.student)
        try:
            while (joining := self._joining(decoder)) is not None:
                for answer in joining:
                    self._add(decoder, answer)
                if decoder.answers:
                    rows = len(decoder.answers)
                    self._step(decoder)
                    with self._cond:
                        self._steps[rows] += 1
        except BaseException as exc:  # never leave a caller waiting
            with self._cond:
                self._running = False
                queued = [answer for _, answer in self._queue]
                self._queue.clear()
            for answer in decoder.clear() + queued:
                answer.fail(exc)
            raise

    def _joining(self, decoder: Decoding) -> list[Answer] | None:
        """The queued answers that join the batch before the next step (waiting out the window when
        the batch is empty); None when there is nothing left to do, and the thread ends."""
        with self._cond:
            if not decoder.answers:
                if not self._queue:
                    self._running = False
                    return None
                deadline = self._queue[0][0] + self.window_s
                while len(self._queue) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            room = self.max_batch - len(decoder.answers)
            return [self._queue.popleft()[1] for _ in range(min(room, len(self._queue)))]

    @staticmethod
    def _add(decoder: Decoding, answer: Answer) -> None:
        try:
            decoder.add(answer)
        except Exception as exc:  # this prompt's prefill failed; the batch goes on
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

