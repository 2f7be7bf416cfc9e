"""What a long piece of work reports to its job while it runs: a stage's context, the pipeline's
sink and a training run all speak this one small interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class ProgressSink(Protocol):
    def progress(self, done: int, total: int, fraction: float | None = None) -> None:
        """`done` of `total` items (`fraction`: the share of the work done, when finer than
        `done / total`, e.g. answers in flight); raises `JobCanceled` if the job was canceled meanwhile."""

    def check_canceled(self) -> None:
        """Raise `JobCanceled` if the job was canceled (cheap: reads a flag)."""

    def live_metrics(self, metrics: dict[str, Any]) -> None:
        """Metrics while the work runs (e.g. the loss so far)."""


class ItemRate:
    """Items finished per minute in one run of a stage, counted from its first report: items an
    earlier run left (restored answers, reported at once when the stage starts) do not count."""

    #: Seconds of work before a rate is given: a shorter span says little.
    MIN_SECONDS = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: tuple[float, int] | None = None

    def update(self, done: int) -> float | None:
        """The rate with `done` items finished now; None until an item has finished in this run."""
        now = self._clock()
        if self._first is None:
            self._first = (now, done)
            return None
        started, before = self._first
        elapsed = now - started
        if done <= before or elapsed < self.MIN_SECONDS:
            return None
        return round((done - before) / elapsed * 60, 2)
