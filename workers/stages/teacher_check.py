"""teacher_check: score the teacher on the person's test set (or seed examples) before training.

A teacher that cannot do the task makes data that cannot teach it; this says so up front.
"""

from __future__ import annotations

from typing import Any

from app.artifacts import TEACHER_PREDICTIONS_ARTIFACT
from app.specs import TaskSpec, TaskType
from workers.labelling import answer_one, answers_or_none
from workers.scoring import score_answers
from workers.stages.base import StageContext
from workers.stages.common import answer_each, answer_key, write_jsonl

WEAK_TEACHER = 0.6


class TeacherCheckStage:
    name = "teacher_check"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        source = "test_set" if ctx.spec.test_set else "examples"
        rows = ctx.spec.test_set or ctx.spec.examples
        if not rows:
            return {"skipped": "no test_set or examples to score the teacher on"}

        answers = answer_each(ctx, rows, [answer_key(i, row.input) for i, row in enumerate(rows)],
                              lambda t, row: answer_one(t, unseen(spec, row.input).offering(row.tools), row.input))
        expected = [row.output.strip() for row in rows]
        predicted = answers_or_none(answers.results)
        report = score_answers(expected, predicted, spec.task_type, spec.label_names, tools=spec.tools)
        predictions = write_jsonl(ctx, TEACHER_PREDICTIONS_ARTIFACT, (
            {"input": row.input, "expected": e, "predicted": p}
            for row, e, p in zip(rows, expected, predicted, strict=True)))
        report.update(source=source, model=ctx.spec.teacher, teacher_usage=answers.usage,
                      answers_restored=answers.restored, predictions=predictions)
        warnings = []
        if report["accuracy"] is not None and report["accuracy"] < WEAK_TEACHER:
            warnings.append({"code": "weak_teacher", "message": (
                f"the teacher scores {report['accuracy']:.2f} on your {source.replace('_', ' ')} "
                f"(below {WEAK_TEACHER}); its data may not teach the task well. Check the "
                f"{_what_to_check(spec)}, add seed examples, or pick a stronger teacher.")})
        return {"teacher": report, "warnings": warnings}


def unseen(spec: TaskSpec, text: str) -> TaskSpec:
    """`spec` without `text` among the examples shown answered to the teacher: scored on the seed
    examples, it answers each one without being shown its answer (leave one out)."""
    kept = [row for row in spec.answered_examples if row.input != text]
    return spec if len(kept) == len(spec.answered_examples) else spec.model_copy(update={"answered_examples": kept})


def _what_to_check(spec: TaskSpec) -> str:
    return {TaskType.CLASSIFICATION: "label names and descriptions",
            TaskType.EXTRACTION: "field names and descriptions",
            TaskType.TOOL_CALLING: "tools' names, descriptions and parameters"}.get(spec.task_type, "task description")
