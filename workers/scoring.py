"""Scores from (expected, predicted) pairs: the one scoring rule for teacher and students. No I/O.

Every report has `accuracy` (the headline score), `n`, `correct`, `invalid`, `macro_f1`, `per_label`,
`confusion` and `rule`; the per-type rules (extraction, QA, tool calling) live in `workers.scoring_types`
and add their own keys."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from workers.scoring_types import parse_call, score_calls, score_extraction, score_qa, squad_normalize, token_f1

__all__ = ["INVALID", "EXTRACTION_RULE", "exact_match", "normalize_answer", "parse_call", "percentiles", "score",
           "score_answers", "score_calls", "score_extraction", "score_qa", "squad_normalize", "token_f1"]

INVALID = "(invalid)"
# The `rule` an extraction report carries. "exact_match" (its headline score is whole-object exact
# match) because tests/unit/test_teacher_logic.py pins that name; "extraction" once that test follows.
EXTRACTION_RULE = "exact_match"


def score(pairs: Sequence[tuple[str, str | None]], labels: Sequence[str] = ()) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall/F1 and a confusion matrix
    (`confusion[expected][predicted]`). A prediction of None (no valid answer) counts as wrong."""
    n = len(pairs)
    correct = sum(expected == predicted for expected, predicted in pairs)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for expected, predicted in pairs:
        confusion[expected][predicted if predicted is not None else INVALID] += 1
    names = list(labels) or sorted({e for e, _ in pairs})
    per_label: dict[str, dict[str, Any]] = {}
    for label in names:
        tp = sum(e == label and p == label for e, p in pairs)
        support = sum(e == label for e, _ in pairs)
        n_predicted = sum(p == label for _, p in pairs)
        precision = tp / n_predicted if n_predicted else 0.0
        recall = tp / support if support else None
        f1 = 2 * precision * recall / (precision + recall) if recall and precision else 0.0
        per_label[label] = {"n": support, "accuracy": _round(recall), "recall": _round(recall),
                            "precision": _round(precision) if n_predicted else None, "f1": _round(f1)}
    present = [v["f1"] for v in per_label.values() if v["n"]]
    return {
        "accuracy": _round(correct / n) if n else None,
        "macro_f1": _round(sum(present) / len(present)) if present else None,
        "n": n, "correct": correct, "invalid": sum(p is None for _, p in pairs),
        "per_label": per_label, "confusion": {k: dict(v) for k, v in confusion.items()},
    }


def exact_match(pairs: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """Scores for free-form answers (extraction, QA): accuracy is the share of answers equal to
    the expected one after `normalize_answer`; there are no per-label scores or confusion."""
    n = len(pairs)
    correct = sum(expected == predicted for expected, predicted in pairs)
    return {"accuracy": _round(correct / n) if n else None, "macro_f1": None, "n": n, "correct": correct,
            "invalid": sum(p is None for _, p in pairs), "per_label": {}, "confusion": {}, "rule": "exact_match"}


def score_answers(expected: Sequence[str], predicted: Sequence[str | None], task_type: str,
                  labels: Sequence[str] = (), *, tools: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The scoring rule for one model's answers to a task, by task type: classification per-label
    scores (exact match without labels), extraction field scores, QA exact match and token F1, tool
    calls by AST match against `tools` (plain expected values, no BFCL acceptable lists)."""
    kind = getattr(task_type, "value", task_type)
    if kind == "extraction":
        return score_extraction(expected, predicted, rule=EXTRACTION_RULE)
    if kind == "qa":
        return score_qa(expected, predicted)
    if kind == "tool_calling":
        return score_calls(expected, predicted, tools, acceptable_lists=False)
    pairs = [(normalize_answer(e, kind), None if p is None else normalize_answer(p, kind))
             for e, p in zip(expected, predicted, strict=True)]
    return {**score(pairs, labels), "rule": "classification"} if labels else exact_match(pairs)


def rows_correct(expected: Sequence[str], predicted: Sequence[str | None], task_type: str,
                 labels: Sequence[str] = (), *, tools: Sequence[Mapping[str, Any]] = ()) -> list[bool]:
    """Per row, whether the answer is right by the same rule `score_answers` counts (an extraction's
    normalised values, a call's AST match, SQuAD exact match), so a filter of wrong rows agrees
    with the scores."""
    return [score_answers([e], [p], task_type, labels, tools=tools)["correct"] == 1
            for e, p in zip(expected, predicted, strict=True)]


def normalize_answer(text: str, task_type: str) -> str:
    """The form answers are compared in: JSON objects (extraction, tool calls) canonically re-serialised,
    everything else stripped, lower-cased and with runs of whitespace made single spaces."""
    text = text.strip()
    if task_type in ("extraction", "tool_calling"):
        try:
            return json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
        except ValueError:
            if task_type == "tool_calling":
                return text
    if task_type == "classification":
        return text
    return " ".join(text.lower().split())


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank) of a list of values."""
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))], 2)

    return {"p50": rank(0.5), "p95": rank(0.95)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
