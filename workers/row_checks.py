"""Whether a labelled row may be trained on: its output fits the task type (a label, the fields'
JSON object, a valid call stated by its request or a plain reply, an answer its passage
supports), and the teacher is sure of it (its votes agree, its label fits the label the input
was written for); and the shape a kept row takes in the data set. The curate stage and the refine
stage keep and store rows by these rules."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from app.answer_shapes import call_text, check_call, check_extraction, stated_call
from app.specs import QA_REFUSAL, CurationOptions, TaskSpec, TaskType
from workers import curation
from workers.prompts import MISSING_ARGUMENT, NO_CALL


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


def trusted_rows(rows: list[dict[str, Any]], spec: TaskSpec, options: CurationOptions,
             dropped: Counter[str]) -> tuple[list[dict[str, Any]], int]:
    """The rows that pass their type's check and are trusted (votes agree, label fits its
    intent); drops are counted by reason into `dropped`."""
    kept, values_dropped = [], 0
    for row in rows:
        checked = check_row(row, spec)
        reason = checked.reason if checked.row is None else curation.distrust(
            checked.row, options.min_agreement, options.intent_check and bool(spec.label_names),
            options.intent_confidence)
        if checked.row is None or reason:
            dropped[reason or "invalid_output"] += 1
            continue
        kept.append(checked.row)
        values_dropped += checked.dropped_values
    return kept, values_dropped


def dataset_row(row: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """A kept row as the data set stores it: input, output, split, bucket, and where present its
    source, soft labels (classification) and rationale."""
    out = {"input": row["input"], "output": row["output"], "split": row["split"], "bucket": row.get("bucket")}
    if row.get("source"):
        out["source"] = row["source"]
    if spec.task_type == TaskType.CLASSIFICATION:
        out["label_probs"] = row["label_probs"]
    if row.get("rationale"):
        out["rationale"] = row["rationale"]
    return out
