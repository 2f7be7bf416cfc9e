"""Turning the curated data set into TRL prompt/completion examples.

The student is trained on the raw input alone: the task lives in its weights, so the served
model answers a bare input the way the data taught it, with no instructions to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from app.specs import TaskSpec
from workers.prompts import label_messages

#: The examples' column (and batch key) holding the teacher's label distribution as a vector.
SOFT_LABELS_COLUMN = "soft_labels"


def sft_example(row: dict[str, Any], labels: Sequence[str] = ()) -> dict[str, Any]:
    """One conversational prompt/completion example; for classification also the teacher's
    label distribution as a vector in `labels` order (`SOFT_LABELS_COLUMN`)."""
    example: dict[str, Any] = {
        "prompt": [{"role": "user", "content": row["input"]}],
        "completion": [{"role": "assistant", "content": row["output"]}],
    }
    if labels:
        probs = row.get("label_probs") or {}
        vector = [float(probs.get(label, 0.0)) for label in labels]
        total = sum(vector)
        example[SOFT_LABELS_COLUMN] = ([v / total for v in vector] if total > 0
                                       else [float(row["output"] == label) for label in labels])
    return example


def on_policy_example(row: dict[str, Any], task_spec: TaskSpec | None = None) -> dict[str, Any]:
    """One prompt-only example for on-policy distillation. The student sees the raw input, as it
    will when served, and writes its own answer. The teacher scores that answer after
    `teacher_prompt`: the prompt the label stage sends the teacher (`label_messages`: the task,
    its labels or instruction, then the input), so its distribution is over answers to the task;
    without a task spec the teacher sees the student's prompt."""
    prompt = [{"role": "user", "content": row["input"]}]
    return {"prompt": prompt, "teacher_prompt": label_messages(task_spec, row["input"]) if task_spec else prompt}


def split_examples(rows: Iterable[dict[str, Any]], labels: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Examples by split (`train`, `validation`) from dataset rows."""
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for row in rows:
        out.setdefault(row.get("split", "train"), []).append(sft_example(row, labels))
    return out


def oversample(rows: Sequence[dict[str, Any]], labels: Sequence[str], seed: int = 0) -> list[dict[str, Any]]:
    """Repeat rows of the shorter classes until every label has as many as the largest.

    The teacher's own bias leaves some classes short after curation (it labels what it was asked
    to write as something else); a small student trained on a 2:1 split learns to answer the
    majority label. Repeating keeps every example the teacher made instead of dropping any.
    """
    import random

    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for row in rows:
        by_label.setdefault(row["output"], []).append(row)
    largest = max((len(group) for group in by_label.values()), default=0)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for group in by_label.values():
        if group:
            out += group + [rng.choice(group) for _ in range(largest - len(group))]
    rng.shuffle(out)
    return out
