"""A person's edits of a curated data set, as pure functions: check an output the way curation
checks the teacher's, apply a batch of edits to the rows, and turn an edited export back into
edits (`vibetune data import`).

Rows keep their place for good: a deleted row stays in the file with `deleted: true` (so it can
be restored and every row's `index` means the same row in every revision), an added row goes at
the end. `live_rows` is what training and evaluation read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.answer_shapes import check_call, check_extraction
from app.specs import TaskSpec, TaskType

EditOp = Literal["update", "delete", "restore", "add"]
SPLITS = ("train", "validation")
#: What `changes` counts, in the order a summary lists them.
CHANGE_KINDS = ("updated", "deleted", "restored", "added")
_COUNTED: dict[str, str] = {"update": "updated", "delete": "deleted", "restore": "restored", "add": "added"}


class EditError(ValueError):
    """An edit that cannot be applied: `position` is its place in the batch, `index` the row it names."""

    def __init__(self, position: int, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.position, self.index, self.message = position, index, message


@dataclass
class Applied:
    """The rows after a batch of edits, each edit as applied (with what the row held before) and
    the counts by kind."""

    rows: list[dict[str, Any]]
    edits: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)


def live_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that are in the data set now (deleted ones left out)."""
    return [row for row in rows if not row.get("deleted")]


def check_output(output: str, input_text: str, spec: TaskSpec) -> tuple[str | None, str | None]:
    """A person's output for an input, cleaned as curation cleans the teacher's (`(output, None)`),
    or `(None, why)` when it does not fit the task. Unlike curation, which quietly drops a span
    value missing from the input, a person is told."""
    text = output.strip()
    if not text:
        return None, "the output must not be blank"
    if spec.task_type == TaskType.CLASSIFICATION:
        if text not in spec.label_names:
            return None, f"{text!r} is not one of the labels {spec.label_names}"
        return text, None
    if spec.task_type == TaskType.EXTRACTION:
        checked = check_extraction(text, spec.extraction_fields, input_text)
        if checked.value is None:
            return None, "; ".join(checked.problems)
        if checked.dropped_values:
            return None, f"the value of {', '.join(checked.dropped_values)} does not occur in the input"
        return json.dumps(checked.value, ensure_ascii=False), None
    if spec.task_type == TaskType.TOOL_CALLING and text.startswith("{"):
        call = check_call(text, spec.tools)
        if call.call is None:
            return None, "; ".join(call.problems) or "not a valid call of one of the job's tools"
        return json.dumps(call.call, ensure_ascii=False), None
    return text, None


def _person_row(row: dict[str, Any], output: str, spec: TaskSpec) -> dict[str, Any]:
    """The row carrying the person's output; the teacher's first answer is kept beside it. A
    classification row's soft labels become certain: the person said which label it is."""
    edited = {**row, "output": output, "edited": True}
    edited.setdefault("teacher_output", row.get("output"))
    if spec.task_type == TaskType.CLASSIFICATION:
        edited["label_probs"] = {label: float(label == output) for label in spec.label_names}
    return edited


def _row_at(rows: Sequence[dict[str, Any]], position: int, index: Any) -> dict[str, Any]:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(rows):
        raise EditError(position, f"there is no row {index!r} (the data set has rows 0 to {len(rows) - 1})",
                        index if isinstance(index, int) else None)
    return rows[index]


def apply_edits(rows: Sequence[dict[str, Any]], edits: Sequence[dict[str, Any]], spec: TaskSpec) -> Applied:
    """Apply `edits` in order (`{"op": "update", "index", "output"}`, `{"op": "delete", "index"}`,
    `{"op": "restore", "index"}`, `{"op": "add", "input", "output", "split"}`). All or nothing: the
    first edit that does not fit raises `EditError`. An edit that changes nothing (the same output,
    deleting a deleted row) is left out of the result."""
    out = [dict(row) for row in rows]
    applied: list[dict[str, Any]] = []
    for position, edit in enumerate(edits):
        op = edit.get("op")
        if op == "add":
            input_text = str(edit.get("input") or "").strip()
            if not input_text:
                raise EditError(position, "an added row needs an input")
            split = edit.get("split") or "train"
            if split not in SPLITS:
                raise EditError(position, f"split must be one of {list(SPLITS)}, not {split!r}")
            output, problem = check_output(str(edit.get("output") or ""), input_text, spec)
            if output is None:
                raise EditError(position, f"row {len(out)}: {problem}", len(out))
            row = _person_row({"input": input_text, "split": split, "source": "person"}, output, spec)
            row.pop("teacher_output", None)
            out.append(row)
            applied.append({"op": op, "index": len(out) - 1, "after": row})
            continue
        row = _row_at(out, position, edit.get("index"))
        index = int(edit["index"])
        if op == "update":
            output, problem = check_output(str(edit.get("output") or ""), str(row.get("input", "")), spec)
            if output is None:
                raise EditError(position, f"row {index}: {problem}", index)
            if row.get("deleted"):
                raise EditError(position, f"row {index} is deleted; restore it before changing it", index)
            if output == row.get("output"):
                continue
            out[index] = _person_row(row, output, spec)
            applied.append({"op": op, "index": index, "before": row.get("output"), "after": output})
        elif op in ("delete", "restore"):
            deleting = op == "delete"
            if bool(row.get("deleted")) == deleting:
                continue
            changed = {**row, "deleted": True} if deleting else {k: v for k, v in row.items() if k != "deleted"}
            out[index] = changed
            applied.append({"op": op, "index": index})
        else:
            raise EditError(position, f"op must be one of update, delete, restore, add, not {op!r}")
    counted = Counter(_COUNTED[edit["op"]] for edit in applied)
    return Applied(out, applied, {kind: counted.get(kind, 0) for kind in CHANGE_KINDS})


def export_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live rows as a person edits them: `index`, `input`, `output`, `split`."""
    return [{"index": i, "input": row.get("input"), "output": row.get("output"), "split": row.get("split", "train")}
            for i, row in enumerate(rows) if not row.get("deleted")]


def edits_from_import(rows: Sequence[dict[str, Any]], imported: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The edits that turn the data set into an edited export: a row with an `index` keeps that row
    (its output updated where it changed, restored if it had been deleted); a row without one is
    added, unless a row of the data set has its input (then it is that row); a live row the import
    leaves out is deleted. An index given twice, or whose
    input differs from the row's, is an error (the file belongs to another data set or revision)."""
    edits: list[dict[str, Any]] = []
    seen: set[int] = set()
    by_input = {str(row.get("input", "")).strip(): i for i, row in enumerate(rows) if not row.get("deleted")}
    for position, item in enumerate(imported):
        index = item.get("index")
        if index is None:
            # A new row whose input is already a row's is that row: importing a file twice adds nothing twice.
            index = by_input.get(str(item.get("input") or "").strip())
            if index is None or index in seen:
                edits.append({"op": "add", "input": item.get("input"), "output": item.get("output"),
                              "split": item.get("split") or "train"})
                continue
        row = _row_at(rows, position, index)
        if index in seen:
            raise EditError(position, f"row {index} appears twice in the import", index)
        seen.add(index)
        if item.get("input") is not None and str(item["input"]).strip() != str(row.get("input", "")).strip():
            raise EditError(position, f"row {index}'s input differs from the data set's: export the data "
                                      "again, or drop the index to add it as a new row", index)
        if row.get("deleted"):
            edits.append({"op": "restore", "index": index})
        if item.get("output") is not None and str(item["output"]).strip() != str(row.get("output", "")).strip():
            edits.append({"op": "update", "index": index, "output": item["output"]})
    edits += [{"op": "delete", "index": i} for i, row in enumerate(rows) if not row.get("deleted") and i not in seen]
    return edits
