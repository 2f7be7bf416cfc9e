"""The 95% bootstrap intervals of one model's scores, resampling the same test rows the scores
were computed on (`workers.scoring`). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workers.scoring import normalize_answer, score, score_answers
from workers.statistics import bootstrap_interval, mean_interval

Metric = Callable[[list[int]], float | None]


def row_parts(task_type: str, expected: Sequence[str], predicted: Sequence[str | None]) -> list[tuple[float, ...]]:
    """Each row's share of the type's F1: extraction (tp, fp, fn) summed over the fields (micro F1
    adds them up), QA (token F1,)."""
    parts: list[tuple[float, ...]] = []
    for e, p in zip(expected, predicted, strict=True):
        scores = score_answers([e], [p], task_type)
        if task_type == "extraction":
            fields = scores["fields"].values()
            parts.append(tuple(float(sum(f[k] for f in fields)) for k in ("tp", "fp", "fn")))
        else:
            parts.append((float(scores["f1"] or 0.0),))
    return parts


def f1_metric(task_type: str, expected: Sequence[str], predicted: Sequence[str | None]) -> Metric:
    """The F1 of a resample of rows (extraction: micro F1 over the fields; QA: mean token F1)."""
    parts = row_parts(task_type, expected, predicted)

    def metric(indices: list[int]) -> float | None:
        if not indices:
            return None
        if task_type == "qa":
            return sum(parts[i][0] for i in indices) / len(indices)
        tp, fp, fn = (sum(parts[i][k] for i in indices) for k in range(3))
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    return metric


def macro_f1_metric(expected: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> Metric:
    """Classification macro-F1 of a resample of rows."""
    pairs = [(normalize_answer(e, "classification"), None if p is None else normalize_answer(p, "classification"))
             for e, p in zip(expected, predicted, strict=True)]

    def metric(indices: list[int]) -> float | None:
        value = score([pairs[i] for i in indices], labels)["macro_f1"]
        return None if value is None else float(value)

    return metric


def score_intervals(expected: Sequence[str], predicted: Sequence[str | None], correct: Sequence[bool],
                    task_type: str, labels: Sequence[str] = (), *, seed: int = 0,
                    tools: Sequence[Mapping[str, Any]] = ()) -> dict[str, list[float] | None]:
    """`accuracy_ci95` from the per-row correctness (the headline score of every type), plus the
    interval of the type's F1: `macro_f1_ci95` (classification), `micro_f1_ci95` (extraction),
    `f1_ci95` (QA)."""
    kind = getattr(task_type, "value", task_type)
    out = {"accuracy_ci95": mean_interval([float(c) for c in correct], seed=seed)}
    if kind == "classification" and labels:
        out["macro_f1_ci95"] = bootstrap_interval(macro_f1_metric(expected, predicted, labels), len(expected),
                                                  seed=seed)
    elif kind in ("extraction", "qa"):
        key = "micro_f1_ci95" if kind == "extraction" else "f1_ci95"
        out[key] = bootstrap_interval(f1_metric(kind, expected, predicted), len(expected), seed=seed)
    return out
