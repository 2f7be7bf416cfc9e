"""The text `vibetune compare` prints: pure functions of a `GET /api/compare` body.

Jobs are named A, B, C... in the order asked; each column of the side-by-side table is one job's
tuned student."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.cli.output import _EXTRA_COLUMNS, _interval, _number, duration, human_size, table, truncate

#: Rows of the options part of the table: (label, key in a compared job's `options`).
OPTION_ROWS = (("student", "student"), ("teacher", "teacher"), ("distillation", "distillation"),
               ("method", "method"), ("lora rank", "lora_r"), ("lora alpha", "lora_alpha"), ("epochs", "epochs"),
               ("batch size", "batch_size"), ("learning rate", "learning_rate"), ("max length", "max_length"),
               ("temperature", "temperature"), ("soft-label weight", "soft_label_weight"), ("seed", "seed"),
               ("examples asked", "num_examples"), ("examples trained", "train_examples"))
DATA_ROWS = (("data from", "data_from"), ("data revision", "data_revision"))
#: Marks a row whose value is not the same in every job.
DIFFERS = " *"


def job_names(count: int) -> list[str]:
    """`A`, `B`, ... for the jobs in the order they were asked for."""
    return [chr(ord("A") + i) for i in range(count)]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _scored(scores: dict[str, Any], key: str) -> str:
    value = _number(scores.get(key))
    interval = scores.get(f"{key}_ci95")
    return f"{value} ({_interval(interval)})" if interval else value


def _score_rows(comparison: dict[str, Any]) -> list[list[str]]:
    jobs = comparison["jobs"]
    scores = [job.get("scores") or {} for job in jobs]
    extra = _EXTRA_COLUMNS.get(comparison.get("task_type") or "", _EXTRA_COLUMNS["classification"])
    rows = [["accuracy", *(_scored(s, "accuracy") for s in scores)]]
    rows += [[header.lower(), *(_scored(s, key) for s in scores)] for header, key in extra]
    if not comparison.get("same_rows"):
        rows.append(["accuracy (common rows)", *(_number(job.get("common_accuracy")) for job in jobs)])
    for percentile in ("p50", "p95"):
        rows.append([f"{percentile} ms", *(_number((s.get("latency_ms") or {}).get(percentile), 1) for s in scores)])
    rows.append(["size", *(human_size(s.get("size_bytes")) for s in scores)])
    rows.append(["verdict", *(job.get("verdict") or "-" for job in jobs)])
    return rows


def _option_rows(comparison: dict[str, Any]) -> list[list[str]]:
    jobs, differing = comparison["jobs"], set(comparison.get("differing_options") or [])
    rows = []
    for label, key in OPTION_ROWS:
        values = [(job.get("options") or {}).get(key) for job in jobs]
        if any(v is not None for v in values):
            rows.append([label + (DIFFERS if key in differing else ""), *(_value(v) for v in values)])
    for label, key in DATA_ROWS:
        values = [job.get(key) for job in jobs]
        if any(v is not None for v in values):
            rows.append([label + (DIFFERS if key in differing else ""), *(_value(v) for v in values)])
    rows.append(["train time", *(duration(job.get("train_seconds")) for job in jobs)])
    return rows


def rows_line(comparison: dict[str, Any]) -> str:
    """Whether the jobs were scored on the same test rows, and if not, on how many they share."""
    jobs, common = comparison["jobs"], comparison["common_rows"]
    if comparison.get("same_rows"):
        return f"test rows: every job was scored on the same {common} rows"
    sizes = ", ".join(f"{name} {job['rows']}" for name, job in zip(job_names(len(jobs)), jobs, strict=True))
    if not common:
        return f"test rows: the jobs share no test rows ({sizes}); only their own scores can be compared"
    return f"test rows: the jobs share {common} test rows ({sizes}); the differences below are on those {common}"


def pair_line(pair: dict[str, Any], names: dict[str, str]) -> str:
    """`B - A: -0.050 (95% CI -0.120 to 0.020) on 60 rows; A alone right on 5, B on 2: ...`."""
    a, b = names[pair["a"]], names[pair["b"]]
    if pair.get("difference") is None:
        return f"  {b} - {a}: no common rows"
    interval = pair.get("difference_ci95")
    ci = f" (95% CI {interval[0]:+.3f} to {interval[1]:+.3f})" if interval else ""
    if interval and interval[0] > 0:
        meaning = f"{b} is ahead"
    elif interval and interval[1] < 0:
        meaning = f"{a} is ahead"
    else:
        meaning = "these rows cannot tell them apart"
    return (f"  {b} - {a}: {pair['difference']:+.3f}{ci} on {pair['n']} rows; {a} alone right on "
            f"{pair['a_only_right']}, {b} alone on {pair['b_only_right']}: {meaning}")


def _answer(answer: dict[str, Any]) -> str:
    text = "(no answer)" if answer.get("answer") is None else truncate(answer["answer"], 30) or "(empty)"
    return f"{text} {'ok' if answer.get('correct') else 'wrong'}"


def differing_lines(comparison: dict[str, Any], names: Sequence[str]) -> list[str]:
    """The rows where the students' answers or correctness differ, as many as the server sent."""
    rows, total = comparison.get("differing") or [], comparison.get("differing_total", 0)
    if not total:
        return ["the students answer every common row alike"] if comparison.get("common_rows") else []
    shown = f"; the first {len(rows)} shown" if len(rows) < total else ""
    head = f"rows where the students differ ({total}{shown}):"
    if not rows:
        return [head + " (see them with --rows N)"]
    body = [[str(row["index"]), truncate(row.get("expected") or "-", 24), *(_answer(a) for a in row["answers"]),
             truncate(row["input"], 48)] for row in rows]
    return [head, table(["ROW", "EXPECTED", *names, "INPUT"], body)]


def compare_text(comparison: dict[str, Any]) -> str:
    """`vibetune compare`: which job is which, the side-by-side table (scores with intervals,
    latency, size, options, data), the test rows they share, each pair's accuracy difference and
    the rows where the students differ."""
    jobs = comparison["jobs"]
    names = job_names(len(jobs))
    legend = table(["JOB", "ID", "TASK"], [[name, job["id"], truncate(job.get("task", ""), 60)]
                                           for name, job in zip(names, jobs, strict=True)])
    side = table(["", *names], [*_score_rows(comparison), *_option_rows(comparison)])
    lines = [legend, "", side]
    if comparison.get("differing_options"):
        lines.append(f"({DIFFERS.strip()} differs between the jobs)")
    lines += ["", rows_line(comparison)]
    by_id = dict(zip((job["id"] for job in jobs), names, strict=True))
    if comparison.get("common_rows"):
        lines += ["accuracy differences (paired bootstrap over the common rows):",
                  *(pair_line(pair, by_id) for pair in comparison.get("pairs") or [])]
    differing = differing_lines(comparison, names)
    return "\n".join([*lines, *([""] + differing if differing else [])])
