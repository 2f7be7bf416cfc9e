"""Honest statistics for scores on a few dozen test rows: 95% intervals and the verdict. No I/O.

A score on 60 rows moves by about ±0.06 from one sample of rows to the next, so every score in a
report carries its percentile-bootstrap interval, and the verdict weighs the tuned student against
the teacher with those intervals and with the share of the untuned-to-teacher gap it closed (the
rule distil labs' reports use: `closed = (tuned - untuned) / (teacher - untuned)`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

RESAMPLES = 1000
Z95 = 1.959964
#: Deploy when the tuned student closed at least this share of the gap from its untuned self to the teacher.
CLOSED_ENOUGH = 0.8


def bootstrap_interval(metric: Callable[[list[int]], float | None], n: int, resamples: int = RESAMPLES,
                       seed: int = 0) -> list[float] | None:
    """The 95% percentile bootstrap interval of `metric(row indices)` over `n` rows (None for n < 2)."""
    if n <= 1:
        return None
    rng = random.Random(seed)
    values = sorted(v for v in (metric([rng.randrange(n) for _ in range(n)]) for _ in range(resamples))
                    if v is not None)
    if not values:
        return None
    return [round(values[int(0.025 * (len(values) - 1))], 4), round(values[int(0.975 * (len(values) - 1))], 4)]


def mean_interval(values: Sequence[float], seed: int = 0) -> list[float] | None:
    """The bootstrap interval of the mean of per-row values (1/0 correctness gives accuracy's)."""
    return bootstrap_interval(lambda rows: sum(values[i] for i in rows) / len(rows), len(values), seed=seed)


def wilson(correct: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval of a proportion `correct / n` (for figures with no per-row data)."""
    if n <= 0:
        return None
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def gap_closed(tuned: float | None, untuned: float | None, teacher: float | None) -> float | None:
    """The share of the gap from the untuned student to the teacher that tuning closed (above 1:
    the student beat its teacher); None when the teacher is not ahead of the untuned student."""
    if tuned is None or untuned is None or teacher is None or teacher <= untuned:
        return None
    return round((tuned - untuned) / (teacher - untuned), 4)


@dataclass(frozen=True)
class Verdict:
    """`deploy` or `retune`, and why (`reason`: `reaches_teacher`, `closed_gap` or `behind_teacher`)."""

    verdict: str
    reason: str
    closed: float | None


def decide(tuned: float | None, tuned_interval: Sequence[float] | None, untuned: float | None,
           teacher: float | None) -> Verdict | None:
    """Deploy when the tuned student's 95% interval reaches the teacher's score (the rows cannot
    tell them apart, or the student is ahead) or it closed at least CLOSED_ENOUGH of the gap."""
    if tuned is None or teacher is None:
        return None
    closed = gap_closed(tuned, untuned, teacher)
    upper = tuned_interval[1] if tuned_interval else tuned
    if upper >= teacher:
        return Verdict("deploy", "reaches_teacher", closed)
    if closed is not None and closed >= CLOSED_ENOUGH:
        return Verdict("deploy", "closed_gap", closed)
    return Verdict("retune", "behind_teacher", closed)


def paired_gain(base: Sequence[Sequence[bool]], other: Sequence[Sequence[bool]], seed: int = 0
                ) -> dict[str, Any]:
    """Mean accuracy gain of `base` over `other` (one list of per-row correctness per run, e.g. per
    seed, the same rows in the same order), with its 95% bootstrap interval over the rows: the
    rows are resampled and the runs kept, so both sides are scored on the same rows each time."""
    n = len(base[0])
    # The mean over runs of a difference of means is the mean over rows of each row's difference
    # averaged over the runs: resampling those per-row values resamples the rows, runs kept.
    deltas = [sum(b[i] - o[i] for b, o in zip(base, other, strict=True)) / len(base) for i in range(n)]
    return {"gain": round(sum(deltas) / n, 4), "ci95": mean_interval(deltas, seed=seed), "n": n, "seeds": len(base)}
