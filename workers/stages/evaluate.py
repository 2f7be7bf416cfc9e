"""evaluate: the teacher, the untuned student and the tuned student on the same held-out rows,
scored by the same rule, with latency and size; then a verdict.

Each model is asked the way it is used: the teacher and the untuned student get the task's
instructions and labels, the tuned student gets the raw input (the task lives in its weights).
For classification all three answer by the same constrained choice: greedy decoding restricted
to the label set (vLLM's guided choice for the teacher, `LabelChooser` for the students).
"""

from __future__ import annotations

import time
from typing import Any

from app.artifacts import DATASET_ARTIFACT, MODEL_FOLDER, artifact_key, folder_path
from workers import bundled_models, prompts
from workers.scoring import percentiles, score, verdict
from workers.stages.base import StageContext, StageError
from workers.stages.common import read_jsonl, task_spec, with_teacher, write_jsonl
from workers.stages.label import MalformedAnswer, answer_one, label_inputs, match_label
from workers.stages.teacher_check import PREDICTIONS as TEACHER_PREDICTIONS
from workers.training.student import folder_size, student_source

PREDICTIONS = "reports/predictions.jsonl"
#: Teacher requests timed one at a time for its latency (the CPU teacher is slow; a sample is enough).
TEACHER_LATENCY_SAMPLE = 8


class EvaluateStage:
    name = "evaluate"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        if spec["task_type"] != "classification":
            raise StageError("unsupported_task", "evaluation of the student is implemented for classification tasks")
        labels = [l["name"] for l in spec["labels"]]
        rows, reference = _reference_rows(ctx)
        if not rows:
            raise StageError("no_evaluation_data", "no test set and no validation rows to evaluate on")
        expected = [row["output"].strip() for row in rows]

        teacher_answers, teacher = _teacher(ctx, spec, rows, reference)
        ctx.progress(1, 4)
        base_answers, base = _student(ctx, ctx.spec["student"], rows, labels,
                                      lambda text: prompts.label_messages(spec, text), free=False)
        ctx.progress(2, 4)
        tuned_dir = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (tuned_dir / "config.json").is_file():
            raise StageError("missing_model", "the trained student is missing; run the train stage again")
        tuned_answers, tuned = _student(ctx, str(tuned_dir), rows, labels,
                                        lambda text: [{"role": "user", "content": text}], free=True)
        ctx.progress(3, 4)

        reports = {}
        for name, answers, extra in (("teacher", teacher_answers, teacher), ("base_student", base_answers, base),
                                     ("student", tuned_answers, tuned)):
            reports[name] = {**score(list(zip(expected, answers)), labels), **extra}
        predictions = write_jsonl(ctx, PREDICTIONS, (
            {"input": row["input"], "expected": e, "teacher": t, "base_student": b, "student": s,
             "student_text": tuned_text}
            for row, e, t, b, s, tuned_text in zip(rows, expected, teacher_answers, base_answers, tuned_answers,
                                                   tuned.pop("_texts"))))
        ctx.progress(4, 4)
        student_acc, teacher_acc = reports["student"]["accuracy"], reports["teacher"]["accuracy"]
        return {
            **reports, "reference": reference, "predictions": predictions,
            "verdict": verdict(student_acc, teacher_acc),
            "ratio": round(student_acc / teacher_acc, 4) if student_acc is not None and teacher_acc else None,
        }


def _reference_rows(ctx: StageContext) -> tuple[list[dict[str, Any]], str]:
    if ctx.spec.get("test_set"):
        return list(ctx.spec["test_set"]), "test_set"
    return [r for r in read_jsonl(ctx, DATASET_ARTIFACT) if r.get("split") == "validation"], "validation"


def _teacher(ctx: StageContext, spec: dict[str, Any], rows: list[dict[str, Any]], reference: str
             ) -> tuple[list[str | None], dict[str, Any]]:
    """The teacher's answers (reused from teacher_check when it scored the same test set),
    its latency on a sample of single requests, and its size on disk where known."""
    texts = [row["input"] for row in rows]
    answers = _saved_teacher_answers(ctx, texts) if reference == "test_set" else None
    source = "teacher_check"
    if answers is None:
        results, _ = with_teacher(ctx, lambda t: label_inputs(t, spec, texts))
        answers = [None if isinstance(r, BaseException) else r["output"] for r in results]
        source = "evaluate"
    if reference == "validation":
        source += " (the validation labels are the teacher's own, so this measures its consistency)"
    latencies = with_teacher(ctx, lambda t: _time_single_requests(t, spec, texts[:TEACHER_LATENCY_SAMPLE]))[0]
    bundled = bundled_models.BUNDLED.get(ctx.spec["teacher"])
    size = folder_size(bundled_models.model_dir(bundled)) if bundled else None
    return answers, {"model": ctx.spec["teacher"], "answers_from": source,
                     "latency_ms": {**percentiles(latencies), "n": len(latencies)}, "size_bytes": size}


def _saved_teacher_answers(ctx: StageContext, texts: list[str]) -> list[str | None] | None:
    if not ctx.storage.exists(artifact_key(ctx.job_id, TEACHER_PREDICTIONS)):
        return None
    saved = {row["input"]: row["predicted"] for row in read_jsonl(ctx, TEACHER_PREDICTIONS)}
    return [saved[text] for text in texts] if all(text in saved for text in texts) else None


async def _time_single_requests(teacher: Any, spec: dict[str, Any], texts: list[str]) -> list[float]:
    latencies = []
    for text in texts:
        start = time.perf_counter()
        try:
            await answer_one(teacher, spec, text)
        except MalformedAnswer:
            pass
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def _student(ctx: StageContext, name: str, rows: list[dict[str, Any]], labels: list[str], messages: Any,
             free: bool) -> tuple[list[str], dict[str, Any]]:
    """A student's constrained answers with per-example latency; with `free`, also its free
    greedy answers (what the served model replies) and how often they are a valid label."""
    from workers.training.predict import LabelChooser, generate_answer, timed
    from workers.training.student import load_student

    model, tokenizer = load_student(name)
    model.eval()
    chooser = LabelChooser(model, tokenizer, labels)
    answers, latencies, texts, valid, right = [], [], [], 0, 0
    for row in rows:
        ctx.check_canceled()
        answer, ms = timed(chooser.choose, messages(row["input"]))
        answers.append(answer)
        latencies.append(ms)
        if free:
            text = generate_answer(model, tokenizer, messages(row["input"]))
            texts.append(text)
            try:
                matched = match_label(text, labels)
                valid += 1
                right += matched == row["output"].strip()
            except MalformedAnswer:
                pass
    extra: dict[str, Any] = {"model": name if not free else "tuned student",
                             "latency_ms": {**percentiles(latencies), "n": len(latencies)},
                             "size_bytes": folder_size(student_source(name) if not free else name)}
    if free:
        extra["free_generation"] = {"valid_label_rate": round(valid / len(rows), 4),
                                    "accuracy": round(right / len(rows), 4)}
        extra["_texts"] = texts
    return answers, extra


