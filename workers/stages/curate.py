"""curate: validate, keep what the teacher is sure of (its votes agree, its label fits the label an
input was written for), deduplicate, remove anything close to the test set or seeds, top up the
labels short of their share, balance, split, add the person's seed examples and the imported real
inputs it kept to the train split, and hold the job before training when a label still lacks its
share."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.answer_shapes import load_object
from app.artifacts import DATASET_ARTIFACT, LABELED_ARTIFACT
from app.specs import Row, TaskSpec, TaskType, votes_for
from workers import curation
from workers.generation import OVERGENERATE, PER_CALL, bucket_id, generate_one, label_buckets
from workers.labelling import answer_by_vote, with_rationale
from workers.row_checks import check_row, dataset_row, trusted_rows
from workers.stages.base import StageContext
from workers.stages.common import answer_each, answer_key, read_jsonl, write_jsonl
from workers.teacher import Teacher

VALIDATION_FRACTION = 0.1


class CurateStage:
    name = "curate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec, options = ctx.task_spec(), ctx.spec.curation
        labels, wanted, seed = spec.label_names, ctx.spec.num_examples, ctx.spec.seed
        rows = list(read_jsonl(ctx, LABELED_ARTIFACT))
        dropped: Counter[str] = Counter()
        tests = [r.input for r in ctx.spec.test_set]
        trusted, values_dropped = trusted_rows(real_first(curation.drop_inputs_in_test_set(rows, tests, dropped)),
                                                spec, options, dropped)
        ctx.progress(1, 4)
        held_out = {"test_overlap": tests, "seed_overlap": [r.input for r in ctx.spec.examples]}
        unique = curation.deduplicate(trusted, held_out, curation.NEAR_DUPLICATE_JACCARD)
        topped = self._top_up(ctx, spec, rows, unique.rows, dropped)
        if topped.rows:
            trusted += topped.rows
            unique = curation.deduplicate(trusted, held_out, curation.NEAR_DUPLICATE_JACCARD)
        dropped.update(unique.dropped)
        ctx.progress(2, 4)
        made, real = curation.imported_apart(unique.rows)
        balanced = curation.balance(made, labels, wanted, seed) if labels else \
            curation.Curated(rows=made[:wanted], dropped=Counter({"over_budget": max(0, len(made) - wanted)}))
        dropped.update(balanced.dropped)
        ctx.progress(3, 4)
        final = curation.split(balanced.rows, VALIDATION_FRACTION, seed, key="output" if labels else "bucket")
        seeds = seed_rows(ctx, spec, dropped)
        dataset = [dataset_row(row, spec) for row in final + real + seeds * options.seed_copies]
        artifact = write_jsonl(ctx, DATASET_ARTIFACT, dataset)
        ctx.progress(4, 4)
        shares = curation.label_shares(final + real + seeds, labels, wanted) if labels else {}
        short = [label for label, share in shares.items() if share < options.min_label_share]
        warnings = tool_coverage_warnings(dataset, spec)
        metrics: dict[str, Any] = {}
        if short:
            message = label_short_message(short, shares, options.min_label_share)
            warnings.append({"code": "label_short", "message": message})
            metrics["hold"] = {"code": "label_short", "message": message}
        return {
            **metrics,
            "warnings": warnings,
            # The labelled rows curation started from, the top-up rounds' included.
            "input_rows": len(rows) + topped.metrics.get("written", 0),
            "kept": len(dataset),
            "requested": wanted,
            "dropped": dict(dropped),
            "seed_rows": len(seeds),
            **imported_metrics(rows, real),
            "top_up": topped.metrics,
            **({"label_shares": shares} if labels else {}),
            **({"span_values_dropped": values_dropped} if spec.task_type == TaskType.EXTRACTION else {}),
            **({"unstated_arguments_dropped": values_dropped} if spec.task_type == TaskType.TOOL_CALLING else {}),
            "splits": dict(Counter(r["split"] for r in dataset)),
            "label_counts": {s: dict(Counter(r["output"] for r in dataset if r["split"] == s))
                             for s in ("train", "validation")} if labels else {},
            "artifact": artifact,
        }

    @staticmethod
    def _top_up(ctx: StageContext, spec: TaskSpec, labelled: list[dict[str, Any]], unique: list[dict[str, Any]],
                dropped: Counter[str]) -> TopUp:
        """Top-up rounds for the labels short of their share (classification)."""
        options, labels, wanted = ctx.spec.curation, spec.label_names, ctx.spec.num_examples
        result = TopUp()
        if not labels or not options.top_up_rounds:
            return result
        first_round = math.ceil(wanted * OVERGENERATE / PER_CALL / len(labels))
        starts = {label: first_round for label in labels}
        written = Counter(row.get("intended_label") for row in labelled)
        kept = Counter(row["output"] for row in unique if row.get("intended_label") == row["output"])
        rows = list(unique)
        votes = votes_for(options, spec.task_type)
        for round_no in range(1, options.top_up_rounds + 1):
            short = curation.short_labels(rows, labels, wanted)
            if not short:
                break
            calls = {label: curation.top_up_calls(lacking, kept[label] / written[label] if written[label] else None,
                                                  first_round, PER_CALL)
                     for label, lacking in short.items()}
            new, usage = top_up_round(ctx, spec, calls, starts, ctx.spec.examples, votes, round_no)
            new_trusted, _ = trusted_rows(new, spec, options, dropped)
            written.update(row.get("intended_label") for row in new)
            kept.update(row["output"] for row in new_trusted if row.get("intended_label") == row["output"])
            rows += new_trusted
            result.rows += new_trusted
            result.metrics["rounds"] = round_no
            result.metrics.setdefault("short", {})[str(round_no)] = short
            result.metrics["written"] = result.metrics.get("written", 0) + len(new)
            for key, value in usage.items():
                result.metrics.setdefault("teacher_usage", {})[key] = \
                    result.metrics.get("teacher_usage", {}).get(key, 0) + value
        return result


def real_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with the imported ones first (otherwise in order): deduplication keeps the first of
    near-copies, so a generated input close to a real one is dropped, never the real one."""
    return sorted(rows, key=lambda row: row.get("source") != curation.IMPORTED)


def imported_metrics(labelled: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of the person's imported inputs (none: nothing to report); their drops are
    also in `dropped`, by reason."""
    rows = sum(row.get("source") == curation.IMPORTED for row in labelled)
    return {"imported": {"rows": rows, "kept": len(kept), "dropped": rows - len(kept)}} if rows else {}


def top_up_round(ctx: StageContext, spec: TaskSpec, calls: Mapping[str, int], starts: dict[str, int],
                 seeds: Sequence[Row], votes: int, round_no: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One round: `calls[label]` generation calls per short label (its walk of topics and styles
    going on from `starts[label]`, advanced here), each input labelled by `votes` votes. Returns the
    labelled rows (as the label stage writes them) and the teacher usage."""
    items: list[tuple[dict[str, str], int]] = []
    for label, count in calls.items():
        buckets = label_buckets(spec, label, count, ctx.spec.seed, starts[label])
        items += [(bucket, starts[label] + j) for j, bucket in enumerate(buckets)]
        starts[label] += count
    real = curation.guide_inputs(ctx.spec.inputs, [row.input for row in ctx.spec.test_set], ctx.spec.seed)
    written = answer_each(ctx, items, [f"topup{round_no}:write:{i}:{bucket_id(b)}" for i, (b, _) in enumerate(items)],
                          lambda t, item: generate_one(t, spec, item[0], seeds, item[1], real))
    rows = [{"input": text, "bucket": bucket_id(bucket), "intended_label": bucket.get("label"), "kind": None,
             "top_up": round_no}
            for (bucket, _), result in zip(items, written.results, strict=True)
            if not isinstance(result, BaseException) for text in result]
    texts = [row["input"] for row in rows]
    reasons = ctx.spec.curation.rationales

    async def label_one(teacher: Teacher, text: str) -> dict[str, Any]:
        result = await answer_by_vote(teacher, spec, text, votes)
        return await with_rationale(teacher, spec, text, result) if reasons else result

    suffix = ":rationale" if reasons else ""
    keys = [f"topup{round_no}:label:{answer_key(i, t)}{suffix}" for i, t in enumerate(texts)]
    labelled = answer_each(ctx, texts, keys, label_one)
    out = [{**row, **result} for row, result in zip(rows, labelled.results, strict=True)
           if not isinstance(result, BaseException)]
    usage = {k: written.usage.get(k, 0) + labelled.usage.get(k, 0) for k in {*written.usage, *labelled.usage}}
    return out, usage


@dataclass
class TopUp:
    """The top-up rounds' rows that passed the checks (drops counted by the caller's counter) and their metrics."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def seed_rows(ctx: StageContext, spec: TaskSpec, dropped: Counter[str]) -> list[dict[str, Any]]:
    """The person's seed examples with an output, as train rows (checked like the teacher's
    answers; a seed that is also a test row is left out, `seed_in_test_set`)."""
    if not ctx.spec.curation.seed_copies:
        return []
    tests = {curation.normalize(row.input) for row in ctx.spec.test_set}
    out = []
    for example in ctx.spec.examples:
        if not example.output.strip():
            continue
        if curation.normalize(example.input) in tests:
            dropped["seed_in_test_set"] += 1
            continue
        # No `kind`: a seed may be a call or a plain reply, checked as whichever it is.
        row: dict[str, Any] = {"input": example.input, "output": example.output.strip(), "bucket": "seed"}
        if spec.task_type == TaskType.CLASSIFICATION:
            row["label_probs"] = {label: float(label == row["output"]) for label in spec.label_names}
        checked = check_row(row, spec)
        if checked.row is None:
            dropped["invalid_seed"] += 1
            continue
        out.append({**checked.row, "split": "train", "seed": True})
    return out


def label_short_message(short: list[str], shares: dict[str, float], minimum: float) -> str:
    """Why a data set is held before training."""
    shown = ", ".join(f"{label!r} ({shares[label]:.0%} of its share)" for label in short)
    return (f"the data set is too thin in {shown}; every label needs {minimum:.0%} of an even split. "
            "The teacher rarely confirms inputs written for these labels: check the plan's topics and label "
            "descriptions, add seed examples of them, or raise num_examples. The job stopped after its data; "
            "resume it to train anyway, or send `curation.min_label_share: 0`.")


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
