"""The README's quality tables come from the results files (bench/quality_table.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import quality_table  # noqa: E402


def _run(accuracy: float, status: str = "succeeded") -> dict[str, object]:
    model = {"accuracy": accuracy, "accuracy_ci95": [accuracy - 0.1, accuracy + 0.1]}
    return {"set": "sst2", "task_type": "classification", "n": 60, "num_examples": 150, "status": status,
            "verdict": "deploy", "ratio": 1.0, "wall_s": 600,
            "models": {"teacher": model, "base_student": model, "student": model}}


def test_runs_over_seeds_show_mean_and_spread_and_the_block_is_replaced(tmp_path: Path) -> None:
    for seed, accuracy in enumerate((0.8, 0.9, 1.0)):
        (tmp_path / f"quality_sst2_s{seed}.json").write_text(json.dumps(_run(accuracy)))
    (tmp_path / "quality_tweeteval.json").write_text(json.dumps({**_run(0.5), "set": "tweeteval"}))
    table = quality_table.quality_table(quality_table.load_runs(tmp_path))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()[2:]}
    assert "0.900 ± 0.100" in rows["sst2"] and "| 3 |" in rows["sst2"] and "3 deploy" in rows["sst2"]
    assert "0.500 (0.40–0.60)" in rows["tweeteval"]
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{quality_table.START}\nold\n{quality_table.END}\nafter\n")
    assert quality_table.main(["--results", str(tmp_path), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text and "0.900 ± 0.100" in text


def test_margins_are_paired_over_the_same_rows_and_pooled_over_seeds(tmp_path: Path) -> None:
    # Two seeds on 10 rows: the tuned student right on 8 and 6, its untuned self on 2 and 2, the
    # teacher on the tuned student's rows plus one.
    tuned = [[True] * 8 + [False] * 2, [True] * 6 + [False] * 4]
    untuned = [[True] * 2 + [False] * 8] * 2
    teacher = [[True] * 9 + [False], [True] * 7 + [False] * 3]
    for seed in range(2):
        run = {**_run(0.5), "correct": {"student": tuned[seed], "base_student": untuned[seed],
                                        "teacher": teacher[seed]}}
        (tmp_path / f"quality_sst2_s{seed}.json").write_text(json.dumps(run))
    (tmp_path / "quality_tweeteval.json").write_text(json.dumps({**_run(0.5), "set": "tweeteval"}))
    runs = quality_table.load_runs(tmp_path)
    over_untuned = quality_table.paired_cell(runs["sst2"], "student", "base_student")
    assert over_untuned.startswith("+0.500 (+") and " to +" in over_untuned, over_untuned
    assert quality_table.paired_cell(runs["sst2"], "student", "teacher").startswith("-0.100 (-0.")
    assert quality_table.paired_cell(runs["tweeteval"], "student", "teacher") == "–", "no per-row results"
    assert "| +0.500 (" in quality_table.quality_table(runs)
