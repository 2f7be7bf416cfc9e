"""The text `vibetune compare` prints (app.cli.compare_output), from `GET /api/compare` bodies."""

from __future__ import annotations

from typing import Any

from app.cli.compare_output import compare_text, pair_line

A = "2f1c0b8e-0000-4000-8000-000000000001"
B = "2f1c0b8e-0000-4000-8000-000000000002"


def compared(job_id: str, accuracy: float, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "task": "sort tickets", "status": "succeeded", "task_type": "classification",
            "student": "smol", "rows": 60, "common_accuracy": accuracy, "verdict": "deploy", "data_revision": None,
            "data_from": None, "train_seconds": 95.0,
            "scores": {"accuracy": accuracy, "accuracy_ci95": [accuracy - 0.1, accuracy + 0.05], "macro_f1": 0.8,
                       "macro_f1_ci95": [0.7, 0.9], "latency_ms": {"p50": 21.0, "p95": 30.5},
                       "size_bytes": 270_000_000},
            "options": {"student": "smol", "method": "full", "epochs": 3, "batch_size": 8}, **extra}


def comparison(**extra: Any) -> dict[str, Any]:
    second = compared(B, 0.75, options={"student": "smol", "method": "lora", "lora_r": 16, "epochs": 3,
                                        "batch_size": 8}, data_revision=2, data_from=A)
    return {
        "task_type": "classification", "jobs": [compared(A, 0.85), second], "same_rows": True, "common_rows": 60,
        "differing_options": ["method", "lora_r", "data_from", "data_revision"],
        "pairs": [{"a": A, "b": B, "n": 60, "a_accuracy": 0.85, "b_accuracy": 0.75, "difference": -0.1,
                   "difference_ci95": [-0.2, -0.0167], "a_only_right": 8, "b_only_right": 2}],
        "differing_total": 12,
        "differing": [{"index": 4, "input": "where is my parcel?", "expected": "shipping",
                       "answers": [{"answer": "shipping", "correct": True}, {"answer": "billing", "correct": False}]}],
        **extra,
    }


def test_side_by_side_table_pairs_and_differing_rows() -> None:
    text = compare_text(comparison())
    lines = text.splitlines()
    assert lines[0].split() == ["JOB", "ID", "TASK"] and lines[1].split()[:2] == ["A", A]
    assert any(line.split() == ["accuracy", "0.850", "(0.75-0.90)", "0.750", "(0.65-0.80)"] for line in lines)
    assert any(line.split() == ["macro-f1", "0.800", "(0.70-0.90)", "0.800", "(0.70-0.90)"] for line in lines)
    assert any(line.split() == ["p50", "ms", "21.0", "21.0"] for line in lines)
    assert any(line.split() == ["size", "270.0", "MB", "270.0", "MB"] for line in lines)
    assert any(line.split() == ["method", "*", "full", "lora"] for line in lines)
    assert any(line.split() == ["lora", "rank", "*", "-", "16"] for line in lines)
    assert any(line.split() == ["epochs", "3", "3"] for line in lines), "the same in both: not marked"
    assert any(line.split() == ["data", "revision", "*", "-", "2"] for line in lines)
    assert any(line.split() == ["train", "time", "1m", "35s", "1m", "35s"] for line in lines)
    assert "accuracy (common rows)" not in text, "the same rows: the headline accuracy is the common one"
    assert "test rows: every job was scored on the same 60 rows" in text
    assert "B - A: -0.100 (95% CI -0.200 to -0.017) on 60 rows; A alone right on 8, B alone on 2: A is ahead" in text
    assert "rows where the students differ (12; the first 1 shown):" in text
    row = next(line for line in lines if line.startswith("4 "))
    assert row.split() == ["4", "shipping", "shipping", "ok", "billing", "wrong", "where", "is", "my", "parcel?"]


def test_other_test_rows_and_no_differences() -> None:
    text = compare_text(comparison(same_rows=False, common_rows=40, differing_total=0, differing=[]))
    assert "the jobs share 40 test rows (A 60, B 60); the differences below are on those 40" in text
    assert "accuracy (common rows)" in text
    assert text.endswith("the students answer every common row alike")
    none = compare_text(comparison(same_rows=False, common_rows=0, differing_total=0, differing=[], pairs=[]))
    assert "share no test rows" in none and "paired bootstrap" not in none


def test_a_pair_the_rows_cannot_tell_apart() -> None:
    pair = {"a": A, "b": B, "n": 30, "difference": 0.033, "difference_ci95": [-0.1, 0.167], "a_only_right": 2,
            "b_only_right": 3}
    assert pair_line(pair, {A: "A", B: "B"}).endswith("these rows cannot tell them apart")
    assert "ahead" in pair_line({**pair, "difference_ci95": [0.01, 0.2]}, {A: "A", B: "B"}).split(":")[-1]
