"""label: the teacher answers each generated input under the task spec.

Classification answers are constrained to the label set and keep the teacher's distribution
over the labels (`label_probs`, the soft labels the student distils from). Extraction answers
are constrained to a JSON object with the planned fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from workers import prompts
from workers.stages.base import StageContext
from workers.stages.common import GENERATED, LABELED, read_jsonl, task_spec, with_teacher, write_jsonl
from workers.teacher import Teacher, label_distribution

TOP_LOGPROBS = 10


class MalformedAnswer(ValueError):
    """The teacher's answer does not fit the task (not a label, not the JSON asked for)."""


async def answer_one(teacher: Teacher, spec: dict[str, Any], text: str) -> dict[str, Any]:
    """The teacher's output for one input: `output`, plus `label_probs` for classification."""
    messages = prompts.label_messages(spec, text)
    if spec["task_type"] == "classification":
        labels = [l["name"] for l in spec["labels"]]
        answer = await teacher.chat(messages, max_tokens=16, choices=labels, top_logprobs=TOP_LOGPROBS)
        chosen = match_label(answer.text, labels)
        return {"output": chosen, "label_probs": label_distribution(answer, labels, chosen)}
    if spec["task_type"] == "extraction" and spec.get("output_fields"):
        answer = await teacher.chat(messages, max_tokens=256,
                                    json_schema=prompts.extraction_schema(spec["output_fields"]))
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
    teacher: Teacher, spec: dict[str, Any], texts: list[str], on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any] | BaseException]:
    """The teacher's answer for every text, all in flight at once; malformed answers come back as exceptions."""

    async def one(text: str) -> dict[str, Any]:
        return await answer_one(teacher, spec, text)

    return await teacher.map(texts, one, on_done)


class LabelStage:
    name = "label"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        rows = list(read_jsonl(ctx, GENERATED))
        results, usage = with_teacher(ctx, lambda t: label_inputs(t, spec, [r["input"] for r in rows], ctx.progress))
        labeled, malformed, agree = [], 0, 0
        for row, result in zip(rows, results):
            if isinstance(result, BaseException):
                malformed += 1
                continue
            labeled.append({**row, **result})
            agree += row.get("intended_label") == result["output"]
        artifact = write_jsonl(ctx, LABELED, labeled)
        metrics: dict[str, Any] = {"labeled": len(labeled), "malformed_answers": malformed,
                                   "teacher_usage": usage, "artifact": artifact}
        if spec["task_type"] == "classification" and labeled:
            # How often the teacher's label matches the label the input was written for:
            # a cheap signal of how well the teacher understands its own labels.
            metrics["intent_agreement"] = round(agree / len(labeled), 4)
        return metrics
