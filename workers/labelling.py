"""How the teacher answers an input under a task spec: the one answering path that the label,
teacher_check and evaluate stages share.

Classification answers are constrained to the label set and keep the teacher's distribution
over the labels (`label_probs`, the soft labels the student distils from). Extraction answers
are constrained to a JSON object with the planned fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from app.specs import TaskSpec, TaskType
from workers import prompts
from workers.teacher import Teacher, label_distribution

TOP_LOGPROBS = 10


class MalformedAnswer(ValueError):
    """The teacher's answer does not fit the task (not a label, not the JSON asked for)."""


async def answer_one(teacher: Teacher, spec: TaskSpec, text: str) -> dict[str, Any]:
    """The teacher's output for one input: `output`, plus `label_probs` for classification."""
    messages = prompts.label_messages(spec, text)
    if spec.task_type == TaskType.CLASSIFICATION:
        labels = spec.label_names
        answer = await teacher.chat(messages, max_tokens=16, choices=labels, top_logprobs=TOP_LOGPROBS)
        chosen = match_label(answer.text, labels)
        return {"output": chosen, "label_probs": label_distribution(answer, labels, chosen)}
    if spec.task_type == TaskType.EXTRACTION and spec.output_fields:
        answer = await teacher.chat(messages, max_tokens=256,
                                    json_schema=prompts.extraction_schema(spec.output_fields))
        try:
            parsed = json.loads(answer.text)
        except json.JSONDecodeError as exc:
            raise MalformedAnswer(f"not JSON: {answer.text[:80]!r}") from exc
        return {"output": json.dumps(parsed, ensure_ascii=False, sort_keys=True)}
    answer = await teacher.chat(messages, max_tokens=256)
    if not answer.text.strip():
        raise MalformedAnswer("empty answer")
    return {"output": answer.text.strip()}


def match_label(text: str, labels: Sequence[str]) -> str:
    """The label an answer names (exactly, or ignoring case, quotes and a trailing period)."""
    cleaned = text.strip().strip("\"'`").rstrip(".").strip()
    for label in labels:
        if cleaned == label:
            return label
    for label in labels:
        if cleaned.lower() == label.lower():
            return label
    raise MalformedAnswer(f"not a label: {text[:80]!r}")


async def label_inputs(
    teacher: Teacher, spec: TaskSpec, texts: Sequence[str], on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any] | BaseException]:
    """The teacher's answer for every text (the teacher bounds the requests in flight); malformed answers
    come back as exceptions."""

    async def one(text: str) -> dict[str, Any]:
        return await answer_one(teacher, spec, text)

    return await teacher.map(list(texts), one, on_done)


def answers_or_none(results: Sequence[dict[str, Any] | BaseException]) -> list[str | None]:
    """Each result's `output`, or None where the answer was malformed."""
    return [None if isinstance(result, BaseException) else result["output"] for result in results]
