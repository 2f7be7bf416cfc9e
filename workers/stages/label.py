"""label: the teacher answers each generated input, and each of the person's imported real inputs
(`source: imported`), under the task spec (see `workers.labelling` for how each task type is
asked and constrained). Answers are kept as they arrive, so a retried or resumed run asks only
for the inputs not answered yet.

For open-book QA the teacher then judges each answer against its passage (`supported`); curate
drops the unsupported ones. A refusal needs no judge: curate keeps it only for an input written
to be unanswerable.

With `curation.rationales` the teacher also gives a one-sentence reason for each answer
(`rationale`), which the train stage teaches the student as a second example of the row."""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.artifacts import GENERATED_ARTIFACT, LABELED_ARTIFACT
from app.specs import TaskType, votes_for
from workers.curation import IMPORTED, imported_rows
from workers.labelling import answer_and_judge, answer_by_vote, with_rationale
from workers.stages.base import StageContext
from workers.stages.common import answer_each, answer_key, read_jsonl, write_jsonl
from workers.teacher import Teacher


class LabelStage:
    name = "label"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        imported, repeats = imported_rows(ctx.spec.inputs)
        rows = list(read_jsonl(ctx, GENERATED_ARTIFACT)) + imported
        texts = [r["input"] for r in rows]
        judged = spec.task_type == TaskType.QA and spec.qa_mode == "open_book"
        votes = votes_for(ctx.spec.curation, spec.task_type)
        reasons = ctx.spec.curation.rationales
        # The vote count and the rationale are in the key: answers stored without them are not reused.
        keys = [answer_key(i, text) + (f":votes={votes}" if votes > 1 else "") + (":rationale" if reasons else "")
                for i, text in enumerate(texts)]

        async def answer(teacher: Teacher, text: str) -> dict[str, Any]:
            result = await (answer_and_judge(teacher, spec, text, votes) if judged
                            else answer_by_vote(teacher, spec, text, votes))
            return await with_rationale(teacher, spec, text, result) if reasons else result

        answers = answer_each(ctx, texts, keys, answer, committee=votes > 1)
        labeled, malformed, agree, intended = [], 0, 0, 0
        for row, result in zip(rows, answers.results, strict=True):
            if isinstance(result, BaseException):
                malformed += 1
                continue
            labeled.append({**row, **result})
            intended += row.get("intended_label") is not None
            agree += row.get("intended_label") == result["output"]
        artifact = write_jsonl(ctx, LABELED_ARTIFACT, labeled)
        metrics: dict[str, Any] = {"labeled": len(labeled), "malformed_answers": malformed, "votes": votes,
                                   "answers_restored": answers.restored, "teacher_usage": answers.usage,
                                   "artifact": artifact}
        if imported:
            # The person's real inputs, labelled like the generated ones (repeats asked once).
            metrics["imported"] = sum(r.get("source") == IMPORTED for r in labeled)
            metrics["imported_repeats"] = repeats
        if votes > 1 and labeled:
            # How often the teacher's phrasings agree: its own uncertainty about this data.
            metrics["mean_agreement"] = round(sum(r["agreement"] for r in labeled) / len(labeled), 4)
            metrics["unanimous"] = sum(r["agreement"] >= 1.0 for r in labeled)
            if any("voter_agreed" in r for r in labeled):
                metrics["teacher_agreement"] = teacher_agreement(labeled)
        if reasons:
            metrics["rationales"] = sum(bool(r.get("rationale")) for r in labeled)
        if spec.task_type == TaskType.CLASSIFICATION and intended:
            # How often the teacher's label matches the label the input was written for:
            # a cheap signal of how well the teacher understands its own labels.
            metrics["intent_agreement"] = round(agree / intended, 4)
        return metrics


def teacher_agreement(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each committee teacher's share of votes that agreed with the majority."""
    agreed: Counter[str] = Counter()
    cast: Counter[str] = Counter()
    for row in rows:
        for name, same in row.get("voter_agreed") or []:
            cast[name] += 1
            agreed[name] += bool(same)
    return {name: round(agreed[name] / cast[name], 4) for name in cast}
