"""Turning the curated data set into TRL prompt/completion examples.

The student is trained on the raw input alone: the task lives in its weights, so the served
model answers a bare input the way the data taught it, with no instructions to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def sft_example(row: dict[str, Any], labels: Sequence[str] = ()) -> dict[str, Any]:
    """One conversational prompt/completion example; for classification also the teacher's
    label distribution as a vector in `labels` order (`soft_labels`)."""
    example: dict[str, Any] = {
        "prompt": [{"role": "user", "content": row["input"]}],
        "completion": [{"role": "assistant", "content": row["output"]}],
    }
    if labels:
        probs = row.get("label_probs") or {}
        vector = [float(probs.get(label, 0.0)) for label in labels]
        total = sum(vector)
        example["soft_labels"] = [v / total for v in vector] if total > 0 else [float(row["output"] == l) for l in labels]
    return example


def split_examples(rows: Iterable[dict[str, Any]], labels: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Examples by split (`train`, `validation`) from dataset rows."""
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for row in rows:
        out.setdefault(row.get("split", "train"), []).append(sft_example(row, labels))
    return out
