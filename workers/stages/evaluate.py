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

from app.artifacts import DATASET_ARTIFACT, MODEL_FOLDER, PREDICTIONS_ARTIFACT, artifact_key, folder_path
from workers import bundled_models, prompts
from workers.scoring import exact_match, normalize_answer, percentiles, score, verdict
from workers.stages.base import StageContext, StageError
from workers.stages.common import read_jsonl, task_labels, task_spec, with_teacher, write_jsonl
from workers.stages.label import MalformedAnswer, answer_one, label_inputs, match_label
from workers.stages.teacher_check import PREDICTIONS as TEACHER_PREDICTIONS
from workers.training.student import folder_size, student_source

PREDICTIONS = PREDICTIONS_ARTIFACT
#: Teacher requests timed one at a time for its latency (the CPU teacher is slow; a sample is enough).
TEACHER_LATENCY_SAMPLE = 8


class EvaluateStage:
    name = "evaluate"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        labels = task_labels(spec)
        rows, reference = _reference_rows(ctx)
        if not rows:
            raise StageError("no_evaluation_data", "no test set and no validation rows to evaluate on")
        expected = [normalize_answer(row["output"], spec["task_type"]) for row in rows]

        teacher_answers, teacher = _teacher(ctx, spec, rows, reference)
        teacher_answers = [None if a is None else normalize_answer(a, spec["task_type"]) for a in teacher_answers]
        ctx.progress(1, 4)
        base_answers, base, _ = _student(ctx, ctx.spec["student"], rows, spec["task_type"], labels,
                                         lambda text: prompts.label_messages(spec, text), tuned=False)
        ctx.progress(2, 4)
        tuned_dir = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (tuned_dir / "config.json").is_file():
            raise StageError("missing_model", "the trained student is missing; run the train stage again")
        tuned_answers, tuned, tuned_texts = _student(ctx, str(tuned_dir), rows, spec["task_type"], labels,
                                                     lambda text: [{"role": "user", "content": text}], tuned=True)
        ctx.progress(3, 4)

        reports = {}
        for name, answers, extra in (("teacher", teacher_answers, teacher), ("base_student", base_answers, base),
                                     ("student", tuned_answers, tuned)):
            pairs = list(zip(expected, answers))
            reports[name] = {**(score(pairs, labels) if labels else exact_match(pairs)), **extra}
        predictions = write_jsonl(ctx, PREDICTIONS, (
            {"input": row["input"], "expected": e, "teacher": t, "base_student": b, "student": s,
             "student_text": tuned_text}
            for row, e, t, b, s, tuned_text in zip(rows, expected, teacher_answers, base_answers, tuned_answers,
                                                   tuned_texts)))
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


def _student(ctx: StageContext, name: str, rows: list[dict[str, Any]], task_type: str, labels: list[str],
             messages: Any, tuned: bool) -> tuple[list[str], dict[str, Any], list[str | None]]:
    """A student's answers under the scoring rule, its scores beyond accuracy (latency, size)
    and, for the tuned student of a classification task, its free greedy answers (what the
    served model replies; how often they are a valid label goes into the scores).

    Classification answers are the constrained label choice; other tasks are answered by greedy
    generation, normalised the way the expected outputs are."""
    from workers.training.predict import LabelChooser, generate_answer, timed
    from workers.training.student import load_student

    model, tokenizer = load_student(name)
    model.eval()
    if labels:
        decide = LabelChooser(model, tokenizer, labels).choose
    else:
        budget = answer_budget(tokenizer, rows)

        def decide(chat: list[dict[str, str]]) -> str:
            return normalize_answer(generate_answer(model, tokenizer, chat, budget), task_type)

    free = tuned and bool(labels)
    answers, latencies, texts, valid, right = [], [], [], 0, 0
    for row in rows:
        ctx.check_canceled()
        answer, ms = timed(decide, messages(row["input"]))
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
    extra: dict[str, Any] = {"model": "tuned student" if tuned else name,
                             "latency_ms": {**percentiles(latencies), "n": len(latencies)},
                             "size_bytes": folder_size(name if tuned else student_source(name))}
    if free:
        extra["free_generation"] = {"valid_label_rate": round(valid / len(rows), 4),
                                    "accuracy": round(right / len(rows), 4)}
    return answers, extra, texts if free else [None] * len(rows)


def answer_budget(tokenizer: Any, rows: list[dict[str, Any]], most: int = 256) -> int:
    """New tokens a generated answer may take: the longest expected answer plus a margin."""
    longest = max(len(tokenizer(row["output"], add_special_tokens=False)["input_ids"]) for row in rows)
    return min(most, longest + 16)
