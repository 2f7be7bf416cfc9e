"""curate: validate, deduplicate, remove anything close to the test set or seeds, balance, split."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from app.artifacts import DATASET_ARTIFACT, LABELED_ARTIFACT
from app.specs import TaskSpec, TaskType
from workers import curation
from workers.stages.base import StageContext
from workers.stages.common import read_jsonl, write_jsonl

VALIDATION_FRACTION = 0.1
NEAR_DUPLICATE_JACCARD = 0.7


def is_valid(row: dict[str, Any], spec: TaskSpec) -> bool:
    """Does the row's output fit the task (a label, the asked-for JSON, a non-empty answer)?"""
    output = row.get("output")
    if not isinstance(output, str) or not output.strip() or not str(row.get("input", "")).strip():
        return False
    if spec.task_type == TaskType.CLASSIFICATION:
        return output in spec.label_names and isinstance(row.get("label_probs"), dict)
    if spec.task_type == TaskType.EXTRACTION and spec.output_fields:
        try:
            parsed = json.loads(output)
        except json.JSONDecodeError:
            return False
        return isinstance(parsed, dict) and set(spec.output_fields) <= set(parsed)
    return True


class CurateStage:
    name = "curate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        rows = list(read_jsonl(ctx, LABELED_ARTIFACT))
        dropped: Counter[str] = Counter()
        valid = []
        for row in rows:
            if is_valid(row, spec):
                valid.append(row)
            else:
                dropped["invalid_output"] += 1
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
            "input_rows": len(rows),
            "kept": len(dataset),
            "requested": wanted,
            "dropped": dict(dropped),
            "splits": dict(Counter(r["split"] for r in dataset)),
            "label_counts": {s: dict(Counter(r["output"] for r in dataset if r["split"] == s))
                             for s in ("train", "validation")} if labels else {},
            "artifact": artifact,
        }


def _dataset_row(row: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    out = {"input": row["input"], "output": row["output"], "split": row["split"], "bucket": row.get("bucket")}
    if spec.task_type == TaskType.CLASSIFICATION:
        out["label_probs"] = row["label_probs"]
    return out
