"""curate: validate, deduplicate, remove anything close to the test set or seeds, balance, split."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from app.answer_shapes import call_text, check_call, check_extraction, load_object, stated_call
from app.artifacts import DATASET_ARTIFACT, LABELED_ARTIFACT
from app.specs import QA_REFUSAL, TaskSpec, TaskType
from workers import curation
from workers.prompts import MISSING_ARGUMENT, NO_CALL
from workers.stages.base import StageContext
from workers.stages.common import read_jsonl, write_jsonl

VALIDATION_FRACTION = 0.1
NEAR_DUPLICATE_JACCARD = 0.7


@dataclass
class Checked:
    """One labelled row after its type's check: the row to keep (its output cleaned), or the
    reason it is dropped; `dropped_values` counts values removed from a kept row because its input
    does not state them (an extraction's span values, a call's optional free-text arguments)."""

    row: dict[str, Any] | None
    reason: str | None = None
    dropped_values: int = 0


def check_row(row: dict[str, Any], spec: TaskSpec) -> Checked:
    """Does the row's output fit the task: a label, the fields' JSON object (span values that are
    not in the input removed), a valid call of one of the tools or a plain reply, an answer its
    passage supports?"""
    output = row.get("output")
    if not isinstance(output, str) or not output.strip() or not str(row.get("input", "")).strip():
        return Checked(None, "invalid_output")
    kind = row.get("kind")
    if spec.task_type == TaskType.CLASSIFICATION:
        ok = output in spec.label_names and isinstance(row.get("label_probs"), dict)
        return Checked(row if ok else None, None if ok else "invalid_output")
    if spec.task_type == TaskType.EXTRACTION:
        checked = check_extraction(output, spec.extraction_fields, row["input"])
        if checked.value is None:
            return Checked(None, "invalid_json" if checked.problems == ["not a JSON object"] else "schema_mismatch")
        return Checked({**row, "output": json.dumps(checked.value, ensure_ascii=False)},
                       dropped_values=len(checked.dropped_values))
    if spec.task_type == TaskType.TOOL_CALLING:
        if not output.lstrip().startswith("{"):  # a plain reply: no tool fits, or a value is missing
            return Checked(row if kind != "call" else None, None if kind != "call" else "no_call_for_call_request")
        call = check_call(output, spec.tools)
        if call.call is None:
            return Checked(None, "invalid_call")
        if kind in (NO_CALL, MISSING_ARGUMENT):
            return Checked(None, "call_for_no_call_request")
        return _stated_call(row, call.call, spec)
    if spec.task_type == TaskType.QA and spec.qa_mode == "open_book":
        if output == QA_REFUSAL:
            ok = kind == "unanswerable"
            return Checked(row if ok else None, None if ok else "refused_answerable")
        if row.get("supported") is False:
            return Checked(None, "unsupported_answer")
    return Checked(row)


def _stated_call(row: dict[str, Any], call: dict[str, Any], spec: TaskSpec) -> Checked:
    """A valid call without the values its request does not state: an optional argument is left
    out, a required one (or a call left with no argument) drops the row (`unstated_value`: the
    teacher invented what it needed)."""
    stated, unstated = stated_call(call, spec.tools, row["input"])
    if stated is None:
        return Checked(None, "unstated_value")
    return Checked({**row, "output": call_text(stated)}, dropped_values=len(unstated))


class CurateStage:
    name = "curate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        rows = list(read_jsonl(ctx, LABELED_ARTIFACT))
        dropped: Counter[str] = Counter()
        valid = []
        values_dropped = 0
        for row in rows:
            checked = check_row(row, spec)
            if checked.row is None:
                dropped[checked.reason or "invalid_output"] += 1
            else:
                valid.append(checked.row)
                values_dropped += checked.dropped_values
        ctx.progress(1, 4)
        held_out = {
            "test_overlap": [r.input for r in ctx.spec.test_set],
            "seed_overlap": [r.input for r in ctx.spec.examples],
        }
        unique = curation.deduplicate(valid, held_out, NEAR_DUPLICATE_JACCARD)
        dropped.update(unique.dropped)
        ctx.progress(2, 4)
        seed, wanted = ctx.spec.seed, ctx.spec.num_examples
        labels = spec.label_names
        balanced = curation.balance(unique.rows, labels, wanted, seed) if labels else \
            curation.Curated(rows=unique.rows[:wanted],
                             dropped=Counter({"over_budget": max(0, len(unique.rows) - wanted)}))
        dropped.update(balanced.dropped)
        ctx.progress(3, 4)
        final = curation.split(balanced.rows, VALIDATION_FRACTION, seed, key="output" if labels else "bucket")
        dataset = [_dataset_row(row, spec) for row in final]
        artifact = write_jsonl(ctx, DATASET_ARTIFACT, dataset)
        ctx.progress(4, 4)
        return {
            "warnings": tool_coverage_warnings(dataset, spec),
            "input_rows": len(rows),
            "kept": len(dataset),
            "requested": wanted,
            "dropped": dict(dropped),
            **({"span_values_dropped": values_dropped} if spec.task_type == TaskType.EXTRACTION else {}),
            **({"unstated_arguments_dropped": values_dropped} if spec.task_type == TaskType.TOOL_CALLING else {}),
            "splits": dict(Counter(r["split"] for r in dataset)),
            "label_counts": {s: dict(Counter(r["output"] for r in dataset if r["split"] == s))
                             for s in ("train", "validation")} if labels else {},
            "artifact": artifact,
        }


#: Training examples per tool that a tool-calling job's generation needs to call each tool about
#: twice (5 inputs per teacher call, calls taking turns with requests that need none).
EXAMPLES_PER_TOOL = 8


def tool_coverage_warnings(dataset: list[dict[str, Any]], spec: TaskSpec) -> list[dict[str, str]]:
    """A warning naming the tools that no training row calls: a student with its tools in its
    weights learns them from the training rows alone, so it cannot call those; one that reads
    its tools from the prompt may, but has never been shown how."""
    if spec.task_type != TaskType.TOOL_CALLING:
        return []
    called = {call["name"] for row in dataset if row["split"] == "train"
              if (call := load_object(row["output"])) is not None and "name" in call}
    names = [tool["function"]["name"] for tool in spec.tools]
    missing = [name for name in names if name not in called]
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    effect = ("the student reads its tools from the prompt but has never been shown a call of these"
              if spec.tools_in_prompt else "the student learns only the calls it is trained on")
    return [{"code": "tools_without_examples", "message": (
        f"{len(missing)} of {len(names)} tools have no training example ({shown}); {effect}. "
        f"Raise num_examples (about {EXAMPLES_PER_TOOL} per tool: "
        f"{EXAMPLES_PER_TOOL * len(names)}) or add seed examples that call them.")}]


def _dataset_row(row: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    out = {"input": row["input"], "output": row["output"], "split": row["split"], "bucket": row.get("bucket")}
    if spec.task_type == TaskType.CLASSIFICATION:
        out["label_probs"] = row["label_probs"]
    return out
