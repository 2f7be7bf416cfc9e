"""evaluate: the teacher, the untuned student and the tuned student on the same held-out rows,
scored by the same rule, with latency and size; then a verdict.

Each model is asked the way it is used: the teacher and the untuned student get the task's
instructions and labels, the tuned student gets the raw input (the task lives in its weights).
A tool-calling job with `tools_in_prompt` offers each row's tools (`Row.tools`, else all) to all
three: in the teacher's and untuned student's instructions, in the tuned student's system message.
For classification all three answer by the same constrained choice: greedy decoding restricted
to the label set (vLLM's guided choice for the teacher, `LabelChooser` for the students). For
tool calling the students decode under the offered tools' call grammar
(`app.answer_shapes.call_grammar`), as `/v1` and the GGUF export serve them; the teacher answers
as the label stage asks it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from app.artifacts import (
    MODEL_FOLDER,
    PREDICTIONS_ARTIFACT,
    TEACHER_PREDICTIONS_ARTIFACT,
    artifact_key,
    folder_path,
)
from app.inference import FREE_ANSWER_TOKENS, generate
from app.specs import Row, TaskSpec, TaskType
from workers import bundled_models, prompts
from workers.labelling import (
    MalformedAnswer,
    answer_one,
    answers_or_none,
    label_rows,
    match_label,
    same_answer,
)
from workers.score_intervals import score_intervals
from workers.scoring import normalize_answer, percentiles, rows_correct, score_answers
from workers.stages.base import StageContext, StageError
from workers.stages.common import read_jsonl, reference_rows, with_teacher, write_jsonl
from workers.statistics import decide
from workers.teacher import Teacher
from workers.training.student import folder_size, student_source

#: Teacher requests timed one at a time for its latency (the CPU teacher is slow; a sample is enough).
TEACHER_LATENCY_SAMPLE = 8

Chat = Callable[[Row], list[dict[str, str]]]


class EvaluateStage:
    name = "evaluate"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        rows, reference = reference_rows(ctx)
        if not rows:
            raise StageError("no_evaluation_data", "no test set and no validation rows to evaluate on")
        expected = [row.output for row in rows]

        teacher_answers, teacher = _teacher(ctx, spec, rows, reference)
        ctx.progress(1, 4)
        base_answers, base, _ = _student(ctx, ctx.spec.student, rows, spec,
                                         lambda row: prompts.label_messages(spec.offering(row.tools), row.input),
                                         tuned=False)
        ctx.progress(2, 4)
        tuned_dir = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (tuned_dir / "config.json").is_file():
            raise StageError("missing_model", "the trained student is missing; run the train stage again")
        tuned_answers, tuned, tuned_texts = _student(ctx, str(tuned_dir), rows, spec,
                                                     lambda row: spec.student_messages(row.input, row.tools),
                                                     tuned=True)
        ctx.progress(3, 4)

        reports, normalised, correct = {}, {}, {}
        models = (("teacher", teacher_answers, teacher), ("base_student", base_answers, base),
                  ("student", tuned_answers, tuned))
        for name, answers, extra in models:
            reports[name] = {**score_answers(expected, answers, spec.task_type, spec.label_names, tools=spec.tools),
                             **extra}
            normalised[name] = [None if a is None else normalize(a, spec) for a in answers]
            correct[name] = rows_correct(expected, answers, spec.task_type, spec.label_names, tools=spec.tools)
            reports[name].update(score_intervals(expected, answers, correct[name], spec.task_type, spec.label_names,
                                                 seed=ctx.spec.seed, tools=spec.tools))
        if spec.task_type == TaskType.QA:
            for name, answers, _ in models:
                reports[name]["judge"] = _judged(ctx, rows, answers)
        predictions = write_jsonl(ctx, PREDICTIONS_ARTIFACT, (
            {"input": row.input, "expected": normalize(row.output, spec), "teacher": t, "base_student": b,
             "student": s, "student_text": tuned_text,
             "correct": {name: correct[name][i] for name in correct}}
            for i, (row, t, b, s, tuned_text) in enumerate(zip(rows, normalised["teacher"], normalised["base_student"],
                                                               normalised["student"], tuned_texts, strict=True))))
        ctx.progress(4, 4)
        student_acc, teacher_acc = reports["student"]["accuracy"], reports["teacher"]["accuracy"]
        decided = decide(student_acc, reports["student"].get("accuracy_ci95"), reports["base_student"]["accuracy"],
                         teacher_acc)
        return {
            **reports, "reference": reference, "predictions": predictions,
            "verdict": decided and decided.verdict, "verdict_reason": decided and decided.reason,
            "closed": decided and decided.closed,
            "ratio": round(student_acc / teacher_acc, 4) if student_acc is not None and teacher_acc else None,
        }


def _judged(ctx: StageContext, rows: Sequence[Row], answers: Sequence[str | None]) -> dict[str, Any]:
    """The teacher as judge of free QA answers: the share it finds say what the expected answer says."""
    pairs = [(row, answer) for row, answer in zip(rows, answers, strict=True) if answer]

    async def judge(teacher: Teacher) -> list[bool | BaseException]:
        return await teacher.map(pairs, lambda pair: same_answer(teacher, pair[0].input, pair[0].output, pair[1]))

    verdicts, _ = with_teacher(ctx, judge)
    right = sum(v is True for v in verdicts)
    return {"accuracy": round(right / len(rows), 4) if rows else None, "n": len(rows),
            "unjudged": sum(isinstance(v, BaseException) for v in verdicts), "rule": "teacher_judge"}


def normalize(answer: str, spec: TaskSpec) -> str:
    return normalize_answer(answer, spec.task_type)


def _teacher(ctx: StageContext, spec: TaskSpec, rows: list[Row], reference: str
             ) -> tuple[list[str | None], dict[str, Any]]:
    """The teacher's answers (reused from teacher_check when it scored the same test set),
    its latency on a sample of single requests, and its size on disk where known."""
    texts = [row.input for row in rows]
    answers = _saved_teacher_answers(ctx, texts) if reference == "test_set" else None
    source = "teacher_check"
    if answers is None:
        results, _ = with_teacher(ctx, lambda t: label_rows(t, spec, rows))
        answers = answers_or_none(results)
        source = "evaluate"
    if reference == "validation":
        source += " (the validation labels are the teacher's own, so this measures its consistency)"
    latencies = with_teacher(ctx, lambda t: _time_single_requests(t, spec, rows[:TEACHER_LATENCY_SAMPLE]))[0]
    bundled = bundled_models.BUNDLED.get(ctx.spec.teacher)
    size = folder_size(bundled_models.model_dir(bundled)) if bundled else None
    return answers, {"model": ctx.spec.teacher, "answers_from": source,
                     "latency_ms": {**percentiles(latencies), "n": len(latencies)}, "size_bytes": size}


def _saved_teacher_answers(ctx: StageContext, texts: list[str]) -> list[str | None] | None:
    if not ctx.storage.exists(artifact_key(ctx.job_id, TEACHER_PREDICTIONS_ARTIFACT)):
        return None
    saved = {row["input"]: row["predicted"] for row in read_jsonl(ctx, TEACHER_PREDICTIONS_ARTIFACT)}
    return [saved[text] for text in texts] if all(text in saved for text in texts) else None


async def _time_single_requests(teacher: Teacher, spec: TaskSpec, rows: list[Row]) -> list[float]:
    latencies = []
    for row in rows:
        start = time.perf_counter()
        try:
            await answer_one(teacher, spec.offering(row.tools), row.input)
        except MalformedAnswer:
            pass
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def _student(ctx: StageContext, name: str, rows: Sequence[Row], spec: TaskSpec, messages: Chat,
             tuned: bool) -> tuple[list[str | None], dict[str, Any], list[str | None]]:
    """A student's answers under the scoring rule, its scores beyond accuracy (latency, size)
    and, for the tuned student of a classification task, its free greedy answers (what the
    served model replies; how often they are a valid label goes into the scores).

    Classification answers are the constrained label choice; other tasks are answered by the
    greedy generation `/v1` serves (`app.inference.generate`)."""
    from workers.training.predict import answerer, timed
    from workers.training.student import load_student

    student = load_student(name)
    labels = spec.label_names
    decide = answerer(student, spec, rows, messages)
    free = tuned and bool(labels)
    answers: list[str | None] = []
    latencies: list[float] = []
    texts: list[str | None] = []
    valid = right = 0
    for row in rows:
        ctx.check_canceled()
        answer, ms = timed(decide, row)
        answers.append(answer)
        latencies.append(ms)
        if free:
            text = generate(student, messages(row), max_tokens=FREE_ANSWER_TOKENS).text.strip()
            texts.append(text)
            matched = _label_or_none(text, labels)
            valid += matched is not None
            right += matched == row.output.strip()
    extra: dict[str, Any] = {"model": "tuned student" if tuned else name,
                             "latency_ms": {**percentiles(latencies), "n": len(latencies)},
                             "size_bytes": folder_size(name if tuned else student_source(name))}
    if free:
        extra["free_generation"] = {"valid_label_rate": round(valid / len(rows), 4),
                                    "accuracy": round(right / len(rows), 4)}
    return answers, extra, texts if free else [None] * len(rows)


def _label_or_none(text: str, labels: Sequence[str]) -> str | None:
    try:
        return match_label(text, labels)
    except MalformedAnswer:
        return None
