"""curate: validate, deduplicate, remove anything close to the test set or seeds, balance, split."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from app.artifacts import DATASET_ARTIFACT
from workers import curation
from workers.stages.base import StageContext
from workers.stages.common import LABELED, job_seed, read_jsonl, task_spec, write_jsonl

VALIDATION_FRACTION = 0.1
NEAR_DUPLICATE_JACCARD = 0.7


def is_valid(row: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Does the row's output fit the task (a label, the asked-for JSON, a non-empty answer)?"""
    output = row.get("output")
    if not isinstance(output, str) or not output.strip() or not str(row.get("input", "")).strip():
        return False
    if spec["task_type"] == "classification":
        return output in {l["name"] for l in spec["labels"]} and isinstance(row.get("label_probs"), dict)
    if spec["task_type"] == "extraction" and spec.get("output_fields"):
        try:
            parsed = json.loads(output)
        except json.JSONDecodeError:
            return False
        return isinstance(parsed, dict) and set(spec["output_fields"]) <= set(parsed)
    return True


class CurateStage:
    name = "curate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        rows = list(read_jsonl(ctx, LABELED))
        dropped: Counter[str] = Counter()
        valid = []
        for row in rows:
            if is_valid(row, spec):
                valid.append(row)
            else:
                dropped["invalid_output"] += 1
        ctx.progress(1, 4)
        held_out = {
            "test_overlap": [r["input"] for r in ctx.spec.get("test_set", [])],
            "seed_overlap": [r["input"] for r in ctx.spec.get("examples", [])],
        }
        unique = curation.deduplicate(valid, held_out, NEAR_DUPLICATE_JACCARD)
        dropped.update(unique.dropped)
        ctx.progress(2, 4)
        seed = job_seed(ctx)
        labels = [l["name"] for l in spec["labels"]]
        balanced = curation.balance(unique.rows, labels, ctx.spec["num_examples"], seed) if labels else \
            curation.Curated(rows=unique.rows[: ctx.spec["num_examples"]],
                             dropped=Counter({"over_budget": max(0, len(unique.rows) - ctx.spec["num_examples"])}))
        dropped.update(balanced.dropped)
        ctx.progress(3, 4)
        final = curation.split(balanced.rows, VALIDATION_FRACTION, seed, key="output" if labels else "bucket")
        dataset = [_dataset_row(row, spec) for row in final]
        artifact = write_jsonl(ctx, DATASET_ARTIFACT, dataset)
        ctx.progress(4, 4)
        return {
            "input_rows": len(rows),
            "kept": len(dataset),
            "requested": ctx.spec["num_examples"],
            "dropped": dict(dropped),
            "splits": dict(Counter(r["split"] for r in dataset)),
            "label_counts": {s: dict(Counter(r["output"] for r in dataset if r["split"] == s))
                             for s in ("train", "validation")} if labels else {},
            "artifact": artifact,
        }


def _dataset_row(row: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    out = {"input": row["input"], "output": row["output"], "split": row["split"], "bucket": row.get("bucket")}
    if spec["task_type"] == "classification":
        out["label_probs"] = row["label_probs"]
    return out
