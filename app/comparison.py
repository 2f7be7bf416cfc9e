"""Two or more finished jobs side by side on the same test rows. Pure: no database, no files.

Each job brings what its stages recorded (the evaluate stage's scores, the train stage's resolved
options) and its per-row predictions (`reports/predictions.jsonl`). The rows are aligned by their
input text, so jobs scored on different test sets are compared on the rows they share; each pair
of tuned students gets its paired accuracy difference on those rows with a paired bootstrap 95%
interval (the same bootstrap as every score in a report: `workers.statistics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from pydantic import BaseModel, Field

from workers.statistics import mean_interval

#: Score entries left out of a compared job's scores: per-label, per-field and per-row detail
#: that the job's own report shows.
BULKY_SCORES = frozenset({"per_label", "confusion", "fields", "mismatches"})
#: The training options compared, in the order they are shown (from the train stage's resolved plan).
PLAN_OPTIONS = ("method", "distillation", "epochs", "learning_rate", "batch_size", "max_length", "lora_r",
                "lora_alpha", "soft_label_weight", "temperature", "seed")
#: Where each job's data came from, compared like its options.
DATA_FIELDS = {"data_from", "data_revision", "data_sha256"}
#: Most jobs one comparison takes.
MAX_JOBS = 8


class ComparedJob(BaseModel):
    id: str
    task: str
    status: str
    task_type: str | None = Field(None, description="The task's type (planned, or as asked).")
    student: str | None = Field(None, description="The student model the job fine-tuned.")
    teacher: str | None = None
    data_from: str | None = Field(None, description="The job whose data it trained on (`from_job`), if any.")
    data_revision: int | None = Field(
        None, description="The revision of the data set the student learned from (0: as curation wrote it); null "
                          "when the job records none.")
    data_sha256: str | None = Field(None, description="The digest of the data set it trained on, where recorded.")
    reference: str | None = Field(None, description="What it was scored on: `test_set` or `validation`.")
    rows: int = Field(description="Rows in its predictions.")
    scores: dict[str, Any] = Field(
        description="The tuned student's scores: accuracy with `accuracy_ci95`, the type's own scores with their "
                    "intervals, `latency_ms` (p50, p95), `size_bytes`, `n`.")
    teacher_accuracy: float | None = None
    base_accuracy: float | None = Field(None, description="The untuned student's accuracy.")
    common_accuracy: float | None = Field(None, description="The tuned student's accuracy on the common rows.")
    verdict: str | None = None
    closed: float | None = None
    options: dict[str, Any] = Field(
        description="The training options as run: student, teacher, num_examples, the train stage's resolved plan "
                    "(LoRA settings only when `method` is `lora`), train_examples.")
    train_seconds: float | None = None


class PairDifference(BaseModel):
    a: str = Field(description="The earlier job of the pair (in the order asked).")
    b: str
    n: int = Field(description="Common rows the pair is compared on.")
    a_accuracy: float | None
    b_accuracy: float | None
    difference: float | None = Field(description="b's accuracy minus a's on the common rows.")
    difference_ci95: list[float] | None = Field(
        description="Paired bootstrap 95% interval of the difference (rows resampled together); an interval that "
                    "holds 0 means the rows cannot tell the two apart.")
    a_only_right: int = Field(description="Rows a got right and b wrong.")
    b_only_right: int = Field(description="Rows b got right and a wrong.")


class RowAnswer(BaseModel):
    answer: str | None
    correct: bool


class DifferingRow(BaseModel):
    index: int = Field(description="The row's place in the first job's predictions.")
    input: str
    expected: str | None
    answers: list[RowAnswer] = Field(description="Each job's tuned student, in the order of `jobs`.")


class Comparison(BaseModel):
    task_type: str | None = Field(None, description="The jobs' task type; null when they differ.")
    jobs: list[ComparedJob]
    same_rows: bool = Field(description="Whether every job was scored on exactly the same rows.")
    common_rows: int = Field(description="Rows every job was scored on (aligned by input text).")
    differing_options: list[str] = Field(
        description="Names in `options` (and `data_from`, `data_revision`, `data_sha256`) whose values are not the "
                    "same in every job.")
    pairs: list[PairDifference]
    differing_total: int = Field(description="Common rows where the tuned students' answers or correctness differ.")
    differing: list[DifferingRow] = Field(description="The first of those rows (up to the asked limit).")


@dataclass(frozen=True)
class JobResult:
    """What one finished job brings: its row's fields, its succeeded stages' metrics by stage, and
    its prediction rows (input, expected, teacher, base_student, student, correct{...})."""

    id: str
    task: str
    status: str
    spec: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, Any]]
    predictions: Sequence[Mapping[str, Any]]


#: A row's place in the alignment: its input text and which occurrence of that text it is.
Key = tuple[str, int]


def compare(results: Sequence[JobResult], max_rows: int = 100, seed: int = 0) -> Comparison:
    """Put `results` side by side on their common rows; the first `max_rows` differing rows are listed."""
    aligned = [_by_input(r.predictions) for r in results]
    first = aligned[0]
    common = [key for key in first if all(key in rows for rows in aligned[1:])]
    right = [[_is_right(rows[key][1]) for key in common] for rows in aligned]
    answers = [[_text(rows[key][1].get("student")) for key in common] for rows in aligned]
    jobs = [_job(result, correct) for result, correct in zip(results, right, strict=True)]
    differing = [i for i in range(len(common))
                 if len({a[i] for a in answers}) > 1 or len({c[i] for c in right}) > 1]
    types = {job.task_type for job in jobs}
    return Comparison(
        task_type=types.pop() if len(types) == 1 else None,
        jobs=jobs,
        same_rows=all(rows.keys() == first.keys() for rows in aligned[1:]),
        common_rows=len(common),
        differing_options=differing_options([{**job.options, **job.model_dump(include=DATA_FIELDS)} for job in jobs]),
        pairs=[paired_difference(jobs[i].id, jobs[j].id, right[i], right[j], seed)
               for i, j in combinations(range(len(jobs)), 2)],
        differing_total=len(differing),
        differing=[DifferingRow(
            index=first[common[i]][0], input=common[i][0], expected=_text(first[common[i]][1].get("expected")),
            answers=[RowAnswer(answer=a[i], correct=c[i]) for a, c in zip(answers, right, strict=True)])
            for i in differing[:max_rows]],
    )


def paired_difference(a: str, b: str, a_right: Sequence[bool], b_right: Sequence[bool],
                      seed: int = 0) -> PairDifference:
    """b's accuracy minus a's on the same rows, with the paired bootstrap interval: each resample
    draws rows, not answers, so both students are judged on the same draw."""
    n = len(a_right)
    deltas = [float(y) - float(x) for x, y in zip(a_right, b_right, strict=True)]
    return PairDifference(
        a=a, b=b, n=n,
        a_accuracy=_share(a_right), b_accuracy=_share(b_right),
        difference=round(sum(deltas) / n, 4) if n else None,
        difference_ci95=mean_interval(deltas, seed=seed),
        a_only_right=sum(x and not y for x, y in zip(a_right, b_right, strict=True)),
        b_only_right=sum(y and not x for x, y in zip(a_right, b_right, strict=True)),
    )


def differing_options(options: Sequence[Mapping[str, Any]]) -> list[str]:
    """The option names whose values are not the same in every job (a missing one counts as null)."""
    names = list(dict.fromkeys(name for each in options for name in each))
    return [name for name in names if len({json.dumps(each.get(name), sort_keys=True) for each in options}) > 1]


def _by_input(predictions: Sequence[Mapping[str, Any]]) -> dict[Key, tuple[int, Mapping[str, Any]]]:
    # A test set may hold the same input twice: its k-th copy meets the other job's k-th copy.
    seen: dict[str, int] = {}
    aligned: dict[Key, tuple[int, Mapping[str, Any]]] = {}
    for position, row in enumerate(predictions):
        text = str(row.get("input", ""))
        seen[text] = seen.get(text, -1) + 1
        aligned[(text, seen[text])] = (position, row)
    return aligned


def _is_right(row: Mapping[str, Any]) -> bool:
    # Evaluate records each model's verdict by the task's scoring rule; predictions written before
    # it did fall back to the normalised texts being equal.
    recorded = row.get("correct")
    if isinstance(recorded, Mapping) and "student" in recorded:
        return bool(recorded["student"])
    return row.get("student") is not None and row.get("student") == row.get("expected")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _share(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _first_whole(*values: Any) -> int | None:
    # What the train stage recorded, else what the spec says (a job trained before revisions existed has neither).
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool)), None)


def _job(result: JobResult, common_right: Sequence[bool]) -> ComparedJob:
    evaluation, train = result.metrics.get("evaluate", {}), result.metrics.get("train", {})
    planned = result.metrics.get("plan", {}).get("task_spec") or {}
    student = evaluation.get("student") or {}
    return ComparedJob(
        id=result.id, task=result.task, status=result.status,
        task_type=planned.get("task_type") or result.spec.get("task_type"),
        student=result.spec.get("student"), teacher=result.spec.get("teacher"),
        data_from=_text(result.spec.get("from_job")),
        data_revision=_first_whole(train.get("data_revision"), result.spec.get("data_revision")),
        data_sha256=_text(train.get("data_sha256")),
        reference=evaluation.get("reference"),
        rows=len(result.predictions),
        scores={key: value for key, value in student.items() if key not in BULKY_SCORES},
        teacher_accuracy=_number((evaluation.get("teacher") or {}).get("accuracy")),
        base_accuracy=_number((evaluation.get("base_student") or {}).get("accuracy")),
        common_accuracy=_share(common_right),
        verdict=evaluation.get("verdict"), closed=_number(evaluation.get("closed")),
        options=training_options(result.spec, train),
        train_seconds=_number(train.get("seconds")),
    )


def training_options(spec: Mapping[str, Any], train: Mapping[str, Any]) -> dict[str, Any]:
    """The options a job trained with: the train stage's resolved plan (every default filled in),
    else what the spec asked for; LoRA's settings only where LoRA ran."""
    plan = train.get("plan") or {key: value for key, value in (spec.get("training") or {}).items()
                                  if value is not None}
    options: dict[str, Any] = {"student": spec.get("student"), "teacher": spec.get("teacher"),
                               "num_examples": spec.get("num_examples")}
    options.update({key: plan[key] for key in PLAN_OPTIONS if key in plan})
    if options.get("method") == "full":
        options.pop("lora_r", None)
        options.pop("lora_alpha", None)
    options["train_examples"] = train.get("examples")
    return options
