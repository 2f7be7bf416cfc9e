"""How far a batch of teacher items has got while the answers stream in.

With `TEACHER_CONCURRENCY` requests in flight, answers tend to finish together, so counting only
finished items leaves a bar still for as long as one answer takes (half a minute for a generate
call on the CPU teacher). Here an item in flight counts too, by the tokens it has received so far
against the tokens an item usually takes: the mean of the items finished in this run, or, before
any has finished, its calls' `max_tokens`. An item's share grows with its tokens up to `KNEE`, then
ever more slowly towards `IN_FLIGHT_CAP`, so an answer longer than usual still moves the bar with
every token instead of standing at a cap until it ends. The progress is reported at most every
`every` seconds (each report is a database write) and never goes backwards.

Plain Python: the teacher client counts the tokens (`workers.teacher`), `answer_each` reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: The most an item still in flight counts for: its length is a guess, its end is not.
IN_FLIGHT_CAP = 0.95
#: Up to this share an item counts its tokens against the usual length as they are; past it the
#: share slows down, approaching `IN_FLIGHT_CAP` without reaching it.
KNEE = 0.7
#: Seconds between two reports, at the least.
REPORT_SECONDS = 1.0

Report = Callable[[int, int, float], None]


@dataclass(eq=False)
class TokenCount:
    """The tokens of one item's teacher calls: how many they may take and how many have arrived."""

    budget: int = 0
    received: int = 0


class AnswerMeter:
    """Progress of `total` items of which `done` are answered already; `report(done, total,
    fraction)` gets the finished items and the share of the whole work done, in flight included."""

    def __init__(self, total: int, done: int, report: Report, *, every: float = REPORT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done = total, done
        self._report, self._every, self._clock = report, every, clock
        self._flight: list[TokenCount] = []
        self._finished_tokens = 0
        self._finished_counted = 0
        self._sent = (done, self._whole(done))
        self._sent_at = clock()

    def start(self) -> TokenCount:
        """A new item in flight: its teacher calls add their budget and tokens to the count."""
        count = TokenCount()
        self._flight.append(count)
        return count

    def finish(self, count: TokenCount) -> None:
        """The item is answered (or given up as malformed); reports when a report is due."""
        if count in self._flight:
            self._flight.remove(count)
        if count.received > 0:
            self._finished_tokens += count.received
            self._finished_counted += 1
        self.done += 1
        self.tick()

    def fraction(self) -> float:
        """The share of the work done: finished items whole, items in flight in part."""
        if self.total <= 0:
            return 0.0
        return min(1.0, (self.done + sum(self._share(c) for c in self._flight)) / self.total)

    def tick(self) -> None:
        """Report the progress if it moved and the last report is `every` seconds old (at once
        when every item is done)."""
        now = self._clock()
        finished = self.done >= self.total
        if not finished and now - self._sent_at < self._every:
            return
        fraction = max(self._sent[1], self.fraction())
        if (self.done, fraction) == self._sent:
            return
        self._sent, self._sent_at = (self.done, fraction), now
        self._report(self.done, self.total, fraction)

    def _share(self, count: TokenCount) -> float:
        usual = self._finished_tokens / self._finished_counted if self._finished_counted else count.budget
        if usual <= 0:
            return 0.0
        return in_flight_share(count.received / usual)

    def _whole(self, done: int) -> float:
        return min(1.0, done / self.total) if self.total > 0 else 0.0


def in_flight_share(ratio: float) -> float:
    """The share of an item in flight that has streamed `ratio` times the usual item's tokens:
    the ratio itself up to `KNEE`, then a curve with the same slope there that rises towards
    `IN_FLIGHT_CAP` and never reaches it (so every token still moves it a little)."""
    if ratio <= KNEE:
        return max(0.0, ratio)
    room = IN_FLIGHT_CAP - KNEE
    return KNEE + room * (1 - math.exp(-(ratio - KNEE) / room))
