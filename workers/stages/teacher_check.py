"""teacher_check: score the teacher on the person's test set (or seed examples) before training.

A teacher that cannot do the task makes data that cannot teach it; this says so up front.
"""

from __future__ import annotations

from typing import Any

from workers.scoring import score
from workers.stages.base import StageContext
from workers.stages.common import task_spec, with_teacher, write_jsonl
from workers.stages.label import label_inputs

WEAK_TEACHER = 0.6
PREDICTIONS = "reports/teacher_predictions.jsonl"


class TeacherCheckStage:
    name = "teacher_check"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        source = "test_set" if ctx.spec.get("test_set") else "examples"
        rows = ctx.spec.get(source) or []
        if not rows:
            return {"skipped": "no test_set or examples to score the teacher on"}

        results, usage = with_teacher(ctx, lambda t: label_inputs(t, spec, [r["input"] for r in rows], ctx.progress))
        pairs = [(row["output"].strip(), None if isinstance(r, BaseException) else r["output"]) for row, r in zip(rows, results)]
        report = score(pairs, [l["name"] for l in spec["labels"]])
        predictions = write_jsonl(ctx, PREDICTIONS, (
            {"input": row["input"], "expected": e, "predicted": p} for row, (e, p) in zip(rows, pairs)))
        report.update(source=source, model=ctx.spec["teacher"], teacher_usage=usage, predictions=predictions)
        warnings = []
        if report["accuracy"] is not None and report["accuracy"] < WEAK_TEACHER:
            warnings.append({"code": "weak_teacher", "message": (
                f"the teacher scores {report['accuracy']:.2f} on your {source.replace('_', ' ')} "
                f"(below {WEAK_TEACHER}); its data may not teach the task well. Check the label names "
                "and descriptions, add seed examples, or pick a stronger teacher.")})
        return {"teacher": report, "warnings": warnings}
