"""Every exported GGUF scored in llama.cpp on the rows evaluate scored, by evaluate's rule.

A file is asked the way a person would run it: `llama-server` on the file, chat messages in (the
prompt built from the GGUF's own chat template), greedy answers out. Each answer is scored as the
tuned student's free answer is (a classification answer is the label its text names, or none),
and compared row by row with what the student said in transformers (`predictions.jsonl`), so an
export that drifts shows up as a lower score and fewer identical answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from app.specs import Row, TaskSpec, TaskType
from workers.labelling import MalformedAnswer, match_label
from workers.packaging.llama_runtime import LlamaServer
from workers.score_intervals import score_intervals
from workers.scoring import normalize_answer, percentiles, rows_correct, score_answers

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Reference:
    """What the files are scored against: the rows, their messages, the answer budget, and the
    tuned student's answers to them in transformers (in `comparable` form: a classification's free
    text, stripped; any other answer normalised as evaluate compares it) with the accuracy those
    answers score."""

    rows: Sequence[Row]
    messages: Callable[[Row], Messages]
    max_tokens: int
    student_answers: Sequence[str | None]
    student_accuracy: float | None
    #: The GBNF grammar a row's answer is decoded under (a tool-calling student's call grammar).
    grammar: Callable[[Row], str | None] = lambda row: None


def scorable(text: str, spec: TaskSpec) -> str | None:
    """An answer as evaluate scores a free answer: the label its text names (classification; none
    when it names no label), else the text itself."""
    if spec.task_type == TaskType.CLASSIFICATION and spec.label_names:
        try:
            return match_label(text.strip(), spec.label_names)
        except MalformedAnswer:
            return None
    return text


def comparable(text: str | None, spec: TaskSpec) -> str | None:
    """The form two runtimes' answers are compared in: the whole text (stripped) of a classification
    answer, not just the label it names, so equal means the same greedy answer; any other answer
    as evaluate normalises it."""
    if text is None:
        return None
    return text.strip() if spec.task_type == TaskType.CLASSIFICATION else normalize_answer(text, spec.task_type.value)


def score_export(server: LlamaServer, spec: TaskSpec, reference: Reference, seed: int = 0,
                 check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """One file's answers to every reference row, scored: accuracy with its 95% interval, the
    change against the student in transformers, the share of identical answers, tokens/s and
    latency (one request at a time)."""
    answers: list[str | None] = []
    texts: list[str] = []
    speeds: list[float] = []
    latencies: list[float] = []
    for row in reference.rows:
        check()
        reply = server.chat(reference.messages(row), reference.max_tokens, grammar=reference.grammar(row))
        answers.append(scorable(reply.text, spec))
        texts.append(reply.text)
        latencies.append(reply.milliseconds)
        if reply.tokens_per_second:
            speeds.append(float(reply.tokens_per_second))
    expected = [row.output for row in reference.rows]
    labels, tools = spec.label_names, spec.tools
    scores = score_answers(expected, answers, spec.task_type, labels, tools=tools)
    correct = rows_correct(expected, answers, spec.task_type, labels, tools=tools)
    interval = score_intervals(expected, answers, correct, spec.task_type, labels, seed=seed, tools=tools)
    same = sum(comparable(text, spec) == student for text, student in zip(texts, reference.student_answers,
                                                                          strict=True))
    accuracy = scores.get("accuracy")
    return {
        "n": len(answers), "accuracy": accuracy, "accuracy_ci95": interval.get("accuracy_ci95"),
        "student_accuracy": reference.student_accuracy,
        "change": None if accuracy is None or reference.student_accuracy is None
        else round(accuracy - reference.student_accuracy, 4),
        "same_answers": round(same / len(answers), 4) if answers else None,
        "tokens_per_second": round(median(speeds), 1) if speeds else None,
        "latency_ms": {**percentiles(latencies), "n": len(latencies)},
    }


def flag_and_recommend(exports: list[dict[str, Any]], margin: float) -> str | None:
    """Marks each export whose score is more than `margin` below the f16 file's (`flagged`) and
    returns the name of the smallest whole model within the margin (the f16 file itself at worst;
    a LoRA adapter needs its base beside it, so it is scored and flagged but never recommended)."""
    f16 = next((e for e in exports if e["export"] == "f16"), None)
    base = None if f16 is None else f16.get("accuracy")
    for export in exports:
        score = export.get("accuracy")
        export["flagged"] = bool(base is not None and (score is None or score < base - margin))
    fits = [e for e in exports if not e["flagged"] and e.get("accuracy") is not None and e["export"] != "lora"]
    return min(fits, key=lambda e: e["size_bytes"])["name"] if fits else None


def export_file_name(export: str) -> str:
    """The artifact name of one export: `student.gguf` for f16 (the name it always had), else
    `student.<type>.gguf`."""
    return "student.gguf" if export == "f16" else f"student.{export}.gguf"


def file_size(path: Path) -> int:
    return path.stat().st_size
