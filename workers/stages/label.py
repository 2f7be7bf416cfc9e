"""label: the teacher answers each generated input under the task spec (see `workers.labelling`
for how each task type is asked and constrained)."""

from __future__ import annotations

from typing import Any

from app.artifacts import GENERATED_ARTIFACT, LABELED_ARTIFACT
from app.specs import TaskType
from workers.labelling import label_inputs
from workers.stages.base import StageContext
from workers.stages.common import read_jsonl, with_teacher, write_jsonl


class LabelStage:
    name = "label"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        rows = list(read_jsonl(ctx, GENERATED_ARTIFACT))
        results, usage = with_teacher(ctx, lambda t: label_inputs(t, spec, [r["input"] for r in rows], ctx.progress))
        labeled, malformed, agree = [], 0, 0
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                malformed += 1
                continue
            labeled.append({**row, **result})
            agree += row.get("intended_label") == result["output"]
        artifact = write_jsonl(ctx, LABELED_ARTIFACT, labeled)
        metrics: dict[str, Any] = {"labeled": len(labeled), "malformed_answers": malformed,
                                   "teacher_usage": usage, "artifact": artifact}
        if spec.task_type == TaskType.CLASSIFICATION and labeled:
            # How often the teacher's label matches the label the input was written for:
            # a cheap signal of how well the teacher understands its own labels.
            metrics["intent_agreement"] = round(agree / len(labeled), 4)
        return metrics
