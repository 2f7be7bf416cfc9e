"""The README's quality tables, generated from the results files (never typed by hand).

Reads `bench/results/quality_*.json` (one file per run of `bench/quality.py`; runs of one set over
several seeds are `quality_<set>_s<seed>.json`) and `bench/results/levers_*.json`
(`bench/levers.py`), and prints two Markdown tables: each set's runs (mean and spread of each
model's accuracy over the seeds, with the 95% interval of a single run, and the tuned student's
margins over its untuned self and over the teacher on the same rows, with paired intervals) and
each lever's gain.
`--write README.md` replaces the text between the `<!-- quality-table -->` and
`<!-- /quality-table -->` markers instead of printing.

    python bench/quality_table.py [--results bench/results] [--write README.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_rows import MODELS, accuracy_cell, mean_sd  # noqa: E402

from workers.statistics import paired_gain  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
START, END = "<!-- quality-table -->", "<!-- /quality-table -->"
_SEED_SUFFIX = re.compile(r"_s\d+$")


def load_runs(results: Path) -> dict[str, list[dict[str, Any]]]:
    """The quality runs grouped by file stem without its seed suffix (a set and its variant)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(results.glob("quality_*.json")):
        groups[_SEED_SUFFIX.sub("", path.stem).removeprefix("quality_")].append(json.loads(path.read_text()))
    return dict(groups)


def model_cell(runs: Sequence[dict[str, Any]], model: str) -> str:
    """One run: `0.733 (0.61–0.83)`; several: `0.733 ± 0.021 (3 seeds)`."""
    scores = [(r.get("models") or {}).get(model) or {} for r in runs if r.get("status") == "succeeded"]
    values = [s["accuracy"] for s in scores if s.get("accuracy") is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return accuracy_cell(next(s for s in scores if s.get("accuracy") is not None))
    mean, sd = mean_sd(values)
    return f"{mean:.3f} ± {sd:.3f}"


def paired_cell(runs: Sequence[dict[str, Any]], model: str, other: str) -> str:
    """`model` minus `other` in accuracy on the same rows, with its paired 95% bootstrap interval
    (the rows resampled, the seeds kept): `+0.200 (+0.03 to +0.37)`; – without per-row results."""
    pairs = [(r["correct"][model], r["correct"][other]) for r in runs
             if r.get("status") == "succeeded" and model in (r.get("correct") or {}) and other in r["correct"]]
    if not pairs or len({len(a) for a, _ in pairs}) != 1:
        return "–"
    gain = paired_gain([a for a, _ in pairs], [b for _, b in pairs])
    ci = gain["ci95"]
    return f"{gain['gain']:+.3f}" + (f" ({ci[0]:+.2f} to {ci[1]:+.2f})" if ci else "")


def quality_table(groups: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| run | type | n | examples | seeds | teacher | untuned student | tuned student | tuned/teacher | "
             "tuned − untuned (paired 95%) | tuned − teacher (paired 95%) | verdicts | wall time (mean) |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: | --- | --- | --- | ---: |"]
    for name, runs in groups.items():
        first = runs[0]
        done = [r for r in runs if r.get("status") == "succeeded"]
        ratios = [r["ratio"] for r in done if r.get("ratio") is not None]
        ratio = "–" if not ratios else f"{sum(ratios) / len(ratios):.2f}"
        statuses = [r.get("verdict") or r.get("status") for r in runs]
        verdicts = ", ".join(f"{statuses.count(v)} {v}" for v in dict.fromkeys(statuses))
        wall = sum(r.get("wall_s", 0) for r in runs) / len(runs) / 60
        lines.append(f"| {name} | {first.get('task_type')} | {first.get('n')} | {first.get('num_examples')} | "
                     f"{len(runs)} | {' | '.join(model_cell(runs, m) for m in MODELS)} | {ratio} | "
                     f"{paired_cell(runs, 'student', 'base_student')} | {paired_cell(runs, 'student', 'teacher')} | "
                     f"{verdicts} | "
                     f"{wall:.1f} min |")
    return "\n".join(lines)


def levers_table(results: Path) -> str:
    lines = ["| set | configuration | options | teacher | untuned | tuned accuracy (per seed) | "
             "the lever's gain (95% CI) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for path in sorted(results.glob("levers_*.json")):
        data = json.loads(path.read_text())
        for name, runs in data["runs"].items():
            accs = ", ".join(f"{r['models']['student']['accuracy']:.3f}" if r.get("status") == "succeeded"
                             else str(r.get("status")) for r in runs)
            gain = data["gains_vs_defaults"].get(name) or {}
            shown = "–" if gain.get("gain") is None else \
                f"{gain['gain']:+.3f} ({gain['ci95'][0]:+.2f} to {gain['ci95'][1]:+.2f}), n {gain['n']}"
            options = json.dumps(data["configs"].get(name) or {}) if name != "defaults" else "the defaults"
            lines.append(f"| {data['set']} | {name} | `{options}` | {model_cell(runs, 'teacher')} | "
                         f"{model_cell(runs, 'base_student')} | {accs} | {shown} |")
    return "\n".join(lines)


def render(results: Path) -> str:
    return (f"{START}\nWhole jobs per run (`bench/results/quality_*.json`):\n\n{quality_table(load_runs(results))}\n\n"
            f"Curation levers (`bench/results/levers_*.json`):\n\n{levers_table(results)}\n{END}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write", type=Path, default=None, help="replace the marked block in this file")
    args = parser.parse_args(argv)
    block = render(args.results)
    if args.write is None:
        print(block)
        return 0
    text = args.write.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"quality_table: {args.write} has no {START} ... {END} block", file=sys.stderr)
        return 2
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    args.write.write_text(before + block + after, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
