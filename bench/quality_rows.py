"""The Markdown rows `bench/quality.py` prints: one per run, one per set over seeds, one per
exported GGUF file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MODELS = ("teacher", "base_student", "student")
#: The table's second figure per task type, beside accuracy.
SECONDARY = {"classification": "macro_f1", "extraction": "micro_f1", "qa": "f1", "tool_calling": "no_call_accuracy"}

TABLE_HEADER = ("| set | type | n | teacher | untuned student | tuned student | tuned/teacher | "
                "second metric (teacher / untuned / tuned) | verdict | wall time |\n"
                "| --- | --- | ---: | --- | --- | --- | ---: | --- | --- | ---: |")


def accuracy_cell(scores: dict[str, Any] | None) -> str:
    """`0.733 (0.61–0.83)`: one run's accuracy with its 95% interval; – without one."""
    if not scores or scores.get("accuracy") is None:
        return "–"
    ci = scores.get("accuracy_ci95")
    return f"{scores['accuracy']:.3f}" + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown_row(result: dict[str, Any]) -> str:
    base = f"| {result['set']} | {result['task_type']} | {result['n']} |"
    if result["status"] != "succeeded":
        failed = f"job {result['job_id']} {result['status']}: {result.get('error')}"
        return f"{base} {failed} | – | – | – | – | – | {result['wall_s'] / 60:.1f} min |"
    models = result["models"]
    key = SECONDARY[result["task_type"]]
    second = " / ".join(_num((models[m] or {}).get(key)) for m in MODELS)
    ratio = "–" if result.get("ratio") is None else f"{result['ratio']:.2f}"
    cells = " | ".join(accuracy_cell(models[m]) for m in MODELS)
    return (f"{base} {cells} | "
            f"{ratio} | {key} {second} | {result.get('verdict') or '–'} | {result['wall_s'] / 60:.1f} min |")


EXPORTS_HEADER = ("| set | file | type | n | accuracy (95% interval) | change vs transformers | same answers | "
                  "tokens/s | size |\n| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")


def export_rows(result: dict[str, Any]) -> list[str]:
    """One Markdown row per exported file of a result: its score in llama.cpp and what it costs."""
    rows = []
    for e in result.get("exports") or []:
        ci = e.get("accuracy_ci95")
        interval = f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
        mark = " (recommended)" if e["name"] == result.get("recommended_export") else \
            (" (flagged)" if e.get("flagged") else "")
        rows.append(f"| {result['set']} | `{e['name']}`{mark} | {e['export']} | {e.get('n')} | "
                    f"{_num(e.get('accuracy'))}{interval} | {_num(e.get('change'))} | {_num(e.get('same_answers'))} | "
                    f"{_num(e.get('tokens_per_second'))} | {e['size_bytes'] / 1e6:.1f} MB |")
    return rows


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """The mean of a figure over runs and its sample standard deviation (0 for one run)."""
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def spread(values: Sequence[float]) -> str:
    """`mean ± sd (min–max)` of a figure over runs."""
    mean, sd = mean_sd(values)
    return f"{mean:.3f} ± {sd:.3f} ({min(values):.2f}–{max(values):.2f})"


def spread_row(runs: Sequence[dict[str, Any]]) -> str:
    """The table row of a set's runs over seeds: each model's mean accuracy with its spread."""
    done = [r for r in runs if r["status"] == "succeeded"]
    first = runs[0]
    cells = []
    for model in MODELS:
        values = [r["models"][model]["accuracy"] for r in done if (r["models"].get(model) or {}).get("accuracy")
                  is not None]
        cells.append(spread(values) if values else "–")
    ratios = [r["ratio"] for r in done if r.get("ratio") is not None]
    return (f"| {first['set']} (mean of {len(done)}/{len(runs)} seeds) | {first['task_type']} | {first['n']} | "
            f"{' | '.join(cells)} | {spread(ratios) if ratios else '–'} | – | "
            f"{sum(r['verdict'] == 'deploy' for r in done)} deploy | "
            f"{sum(r['wall_s'] for r in runs) / 60:.1f} min |")
