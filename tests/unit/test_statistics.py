"""The report's intervals and verdict rule (workers.statistics, workers.score_intervals)."""

from __future__ import annotations

from workers.score_intervals import score_intervals
from workers.statistics import decide, gap_closed, mean_interval, paired_gain


def test_mean_interval_brackets_the_accuracy_and_narrows_with_n() -> None:
    small = mean_interval([1.0] * 30 + [0.0] * 30)
    large = mean_interval([1.0] * 300 + [0.0] * 300)
    assert small is not None and large is not None
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert 0.2 < small[1] - small[0] < 0.3  # about ±0.125 at n=60
    assert mean_interval([1.0]) is None


def test_gap_closed() -> None:
    assert gap_closed(0.8, 0.5, 0.9) == 0.75
    assert gap_closed(1.0, 0.5, 0.9) == 1.25  # beyond the teacher
    assert gap_closed(0.8, 0.9, 0.9) is None  # the teacher is not ahead of the untuned student
    assert gap_closed(None, 0.5, 0.9) is None


def test_verdict_rule() -> None:
    # The student's interval reaches the teacher: the rows cannot tell them apart.
    reaches = decide(0.80, [0.70, 0.88], 0.3, 0.85)
    assert reaches is not None and (reaches.verdict, reaches.reason) == ("deploy", "reaches_teacher")
    # Clearly behind, but closed most of a large gap.
    closed = decide(0.80, [0.75, 0.84], 0.1, 0.9)
    assert closed is not None and (closed.verdict, closed.reason, closed.closed) == ("deploy", "closed_gap", 0.875)
    behind = decide(0.50, [0.45, 0.55], 0.3, 0.9)
    assert behind is not None and (behind.verdict, behind.reason) == ("retune", "behind_teacher")
    assert decide(None, None, 0.3, 0.9) is None


def test_score_intervals_per_task_type() -> None:
    expected = ["spam", "ham"] * 20
    predicted = ["spam", "ham"] * 15 + ["ham", "ham"] * 5
    correct = [e == p for e, p in zip(expected, predicted, strict=True)]
    out = score_intervals(expected, predicted, correct, "classification", ["spam", "ham"])
    low, high = out["accuracy_ci95"] or [0, 0]
    assert low < sum(correct) / len(correct) < high and out["macro_f1_ci95"] is not None
    qa = score_intervals(["Paris", "Rome"] * 5, ["paris", "Milan"] * 5, [True, False] * 5, "qa")
    assert set(qa) == {"accuracy_ci95", "f1_ci95"}
    extraction = score_intervals(['{"a": "x"}'] * 4, ['{"a": "x"}', '{"a": "y"}'] * 2, [True, False] * 2, "extraction")
    assert set(extraction) == {"accuracy_ci95", "micro_f1_ci95"}


def test_lever_gain_is_paired_over_the_same_rows() -> None:
    better = [[True] * 45 + [False] * 15]
    worse = [[True] * 30 + [False] * 30]
    result = paired_gain(better, worse)
    assert result["gain"] == 0.25 and result["n"] == 60 and result["seeds"] == 1
    assert 0.1 < result["ci95"][0] < 0.25 < result["ci95"][1]
    assert paired_gain(better, better)["ci95"] == [0.0, 0.0], "the same answers gain nothing on any resample"
