"""Comparing finished jobs on their common test rows (app.comparison): alignment by input text,
the rows where the students differ, and each pair's paired accuracy difference."""

from __future__ import annotations

from typing import Any

from app.comparison import JobResult, compare, differing_options, paired_difference, training_options


def prediction(text: str, expected: str, student: str | None, right: bool | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"input": text, "expected": expected, "teacher": expected, "base_student": "ham",
                           "student": student, "student_text": student}
    row["correct"] = {"teacher": True, "base_student": expected == "ham",
                      "student": student == expected if right is None else right}
    return row


def job(job_id: str, predictions: list[dict[str, Any]], plan: dict[str, Any] | None = None,
        **spec: Any) -> JobResult:
    right = [row.get("correct", {}).get("student", False) for row in predictions]
    accuracy = round(sum(right) / len(right), 4)
    evaluation = {"student": {"accuracy": accuracy, "accuracy_ci95": [0.5, 0.9], "n": len(right),
                              "per_label": {"spam": {}}, "confusion": {}, "latency_ms": {"p50": 20.0, "p95": 30.0},
                              "size_bytes": 270_000_000},
                  "teacher": {"accuracy": 0.95}, "base_student": {"accuracy": 0.5}, "verdict": "deploy",
                  "reference": "test_set", "closed": 0.9}
    train = {"plan": plan or {"method": "full", "epochs": 3, "batch_size": 8, "lora_r": 16, "lora_alpha": 32,
                              "distillation": "soft_labels", "learning_rate": 5e-5},
             "examples": 120, "seconds": 61.5, "data_revision": 0}
    return JobResult(id=job_id, task="spam or ham", status="succeeded",
                     spec={"student": "smol", "teacher": "big", "num_examples": 150, **spec},
                     metrics={"plan": {"task_spec": {"task_type": "classification"}}, "evaluate": evaluation,
                              "train": train},
                     predictions=predictions)


def texts(n: int) -> list[str]:
    return [f"message {i}" for i in range(n)]


def test_same_rows_differing_rows_and_the_paired_difference() -> None:
    expected = ["spam" if i % 2 else "ham" for i in range(40)]
    a_answers = list(expected)
    b_answers = list(expected)
    for i in range(0, 10):  # b gets ten rows wrong that a gets right
        b_answers[i] = "spam" if expected[i] == "ham" else "ham"
    a_answers[39] = "ham"  # a gets one wrong that b gets right
    a = job("a", [prediction(t, e, s) for t, e, s in zip(texts(40), expected, a_answers, strict=True)])
    # b scored the same rows in another order: alignment is by input text, not position.
    b_rows = [prediction(t, e, s) for t, e, s in zip(texts(40), expected, b_answers, strict=True)][::-1]
    b = job("b", b_rows, plan={"method": "lora", "epochs": 3, "batch_size": 16, "lora_r": 8, "lora_alpha": 16,
                               "distillation": "soft_labels", "learning_rate": 2e-4}, student="qwen")

    result = compare([a, b], max_rows=5)

    assert result.same_rows and result.common_rows == 40 and result.task_type == "classification"
    assert result.differing_total == 11 and len(result.differing) == 5
    first = result.differing[0]
    assert first.index == 0 and first.input == "message 0" and first.expected == "ham"
    assert [(x.answer, x.correct) for x in first.answers] == [("ham", True), ("spam", False)]
    pair = result.pairs[0]
    assert (pair.a, pair.b, pair.n) == ("a", "b", 40)
    assert (pair.a_accuracy, pair.b_accuracy, pair.difference) == (0.975, 0.75, -0.225)
    assert (pair.a_only_right, pair.b_only_right) == (10, 1)
    assert pair.difference_ci95 is not None and pair.difference_ci95[0] <= -0.225 <= pair.difference_ci95[1] < 0

    compared_a, compared_b = result.jobs
    assert compared_a.common_accuracy == 0.975 and compared_a.scores["accuracy"] == 0.975
    assert "per_label" not in compared_a.scores and compared_a.scores["latency_ms"]["p50"] == 20.0
    assert compared_a.options["student"] == "smol" and "lora_r" not in compared_a.options  # full fine-tuning
    assert compared_b.options["lora_r"] == 8 and compared_b.train_seconds == 61.5
    assert compared_a.data_revision == 0 and compared_a.data_from is None
    assert set(result.differing_options) == {"student", "method", "batch_size", "lora_r", "lora_alpha",
                                             "learning_rate"}


def test_different_test_sets_are_compared_on_their_common_rows() -> None:
    a = job("a", [prediction(t, "spam", "spam") for t in texts(30)])
    b = job("b", [prediction(t, "spam", "ham") for t in texts(50)[10:]])  # rows 10..49
    result = compare([a, b])
    assert not result.same_rows and result.common_rows == 20
    assert [j.rows for j in result.jobs] == [30, 40]
    assert [j.common_accuracy for j in result.jobs] == [1.0, 0.0]
    assert result.pairs[0].n == 20 and result.pairs[0].difference == -1.0
    assert result.differing_total == 20 and result.differing[0].index == 10


def test_no_common_rows_gives_no_difference_rather_than_an_error() -> None:
    a = job("a", [prediction(t, "spam", "spam") for t in texts(3)])
    b = job("b", [prediction(f"other {i}", "spam", "spam") for i in range(3)])
    result = compare([a, b])
    assert result.common_rows == 0 and not result.same_rows and result.differing_total == 0
    pair = result.pairs[0]
    assert pair.difference is None and pair.difference_ci95 is None and pair.a_accuracy is None


def test_a_repeated_input_meets_its_own_copy_and_correctness_alone_can_differ() -> None:
    # The same answer can be right in one job and wrong in the other (a scoring rule that accepts
    # "2" for 2): that row differs too. The second copy of a repeated input aligns with the second.
    a = job("a", [prediction("same", "x", "x"), prediction("same", "y", "x")])
    b = job("b", [prediction("same", "x", "x"), prediction("same", "y", "x", right=True)])
    result = compare([a, b])
    assert result.same_rows and result.common_rows == 2
    assert result.differing_total == 1 and result.differing[0].index == 1


def test_three_jobs_give_every_pair() -> None:
    rows = [prediction(t, "spam", "spam") for t in texts(5)]
    result = compare([job("a", rows), job("b", rows), job("c", rows)])
    assert [(p.a, p.b) for p in result.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert all(p.difference == 0.0 and p.difference_ci95 == [0.0, 0.0] for p in result.pairs)
    assert result.differing_total == 0 and result.differing_options == []


def test_predictions_without_recorded_correctness_compare_the_texts() -> None:
    old = {"input": "hi", "expected": "ham", "teacher": "ham", "base_student": "ham", "student": "ham"}
    assert compare([job("a", [old]), job("b", [{**old, "student": None}])]).differing[0].answers[1].correct is False


def test_paired_difference_is_b_minus_a() -> None:
    pair = paired_difference("a", "b", [False] * 10, [True] * 10)
    assert pair.difference == 1.0 and pair.b_only_right == 10 and pair.difference_ci95 == [1.0, 1.0]


def test_options_come_from_the_resolved_plan_else_the_spec() -> None:
    spec = {"student": "s", "teacher": "t", "num_examples": 50, "training": {"epochs": 2.0, "method": None}}
    assert training_options(spec, {}) == {"student": "s", "teacher": "t", "num_examples": 50, "epochs": 2.0,
                                          "train_examples": None}
    assert differing_options([{"a": 1, "b": [1]}, {"a": 1, "b": [2]}, {"a": 1}]) == ["b"]
    assert differing_options([{"a": 1}, {"a": 1, "c": None}]) == []
