"""generate: the teacher writes inputs spread over topics, styles, lengths (and intended labels).

Each call's inputs are kept as they arrive, keyed by its bucket, so a retried or resumed run asks
only for the buckets not written yet."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from app.artifacts import GENERATED_ARTIFACT
from app.specs import Row, TaskSpec, TaskType
from workers import prompts
from workers.stages.base import StageContext
from workers.stages.common import answer_each, write_jsonl
from workers.teacher import Teacher

PER_CALL = 5
#: Ask for more than needed: curation drops duplicates and invalid rows.
OVERGENERATE = 1.4


def input_kinds(spec: TaskSpec) -> list[dict[str, str]]:
    """What the inputs of each call are meant to be, taking turns: a label (classification), how
    many fields an input states (extraction), answerable or not (open-book QA), or which tool a
    request needs, none, or one with a value left out (tool calling)."""
    if spec.task_type == TaskType.CLASSIFICATION:
        return [{"label": label.name} for label in spec.labels]
    if spec.task_type == TaskType.EXTRACTION:
        return [{"kind": kind} for kind in prompts.EXTRACTION_KINDS]
    if spec.task_type == TaskType.QA:
        qa_kinds = prompts.OPEN_BOOK_KINDS if spec.qa_mode == "open_book" else prompts.CLOSED_BOOK_KINDS
        return [{"kind": kind} for kind in qa_kinds]
    if spec.task_type == TaskType.TOOL_CALLING and spec.tools:
        names = [tool["function"]["name"] for tool in spec.tools]
        needing = [t["function"]["name"] for t in spec.tools if t["function"].get("parameters", {}).get("required")]
        # Calls twice as often as each other kind (they are what the student is for), the other
        # kinds woven in early so that even a job of a few calls has requests needing no call.
        calls = [{"kind": "call", "tool": name} for name in names * 2]
        others = [{"kind": prompts.NO_CALL}]
        others += [{"kind": prompts.MISSING_ARGUMENT, "tool": name} for name in needing[:max(1, len(names) // 2)]]
        kinds: list[dict[str, str]] = []
        for call in calls:
            kinds += [call, others.pop(0)] if others else [call]
        return kinds + others
    return [{}]


def plan_buckets(spec: TaskSpec, calls: int, seed: int) -> list[dict[str, str]]:
    """One spread bucket per call: the input kinds take turns, and each kind walks the same
    shuffled list of (topic, style, length) combinations, so every kind sees the same spread."""
    kinds = input_kinds(spec)
    combos = list(itertools.product(spec.topics, spec.styles, spec.lengths))
    random.Random(seed).shuffle(combos)
    buckets = []
    for i in range(calls):
        topic, style, length = combos[(i // len(kinds)) % len(combos)]
        buckets.append({"topic": topic, "style": style, "length": length, **kinds[i % len(kinds)]})
    return buckets


def bucket_id(bucket: dict[str, str]) -> str:
    return "|".join(f"{k}={v}" for k, v in bucket.items())


async def generate_one(teacher: Teacher, spec: TaskSpec, bucket: dict[str, str], seeds: Sequence[Row]) -> list[str]:
    """PER_CALL inputs for one bucket (for open-book QA each a passage followed by its question)."""
    passages = spec.task_type == TaskType.QA and spec.qa_mode == "open_book"
    answer = await teacher.chat(prompts.generate_messages(spec, bucket, seeds, PER_CALL),
                                max_tokens=(160 if passages else 90) * PER_CALL, temperature=1.0,
                                json_schema=prompts.generate_schema(PER_CALL, passages))
    inputs = json.loads(answer.text)["inputs"]
    if passages:
        return [prompts.open_book_input(item["passage"], item["question"]) for item in inputs
                if isinstance(item, dict) and str(item.get("passage", "")).strip()
                and str(item.get("question", "")).strip()]
    return [text.strip() for text in inputs if isinstance(text, str) and text.strip()]


async def generate_inputs(
    teacher: Teacher, spec: TaskSpec, buckets: list[dict[str, str]], seeds: Sequence[Row],
    on_done: Callable[[int, int], None] | None = None,
) -> list[list[str] | BaseException]:
    """Ask the teacher for PER_CALL inputs per bucket, with the teacher's bound on calls in flight."""

    async def one(bucket: dict[str, str]) -> list[str]:
        return await generate_one(teacher, spec, bucket, seeds)

    return await teacher.map(buckets, one, on_done)


class GenerateStage:
    name = "generate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        calls = math.ceil(ctx.spec.num_examples * OVERGENERATE / PER_CALL)
        buckets = plan_buckets(spec, calls, ctx.spec.seed)
        seeds = ctx.spec.examples
        answers = answer_each(ctx, buckets, [f"{i}:{bucket_id(bucket)}" for i, bucket in enumerate(buckets)],
                              lambda t, bucket: generate_one(t, spec, bucket, seeds))
        rows: list[dict[str, Any]] = []
        malformed = 0
        for bucket, result in zip(buckets, answers.results, strict=True):
            if isinstance(result, BaseException):
                malformed += 1
                continue
            rows += [{"input": text, "bucket": bucket_id(bucket), "intended_label": bucket.get("label"),
                      "kind": bucket.get("kind")} for text in result]
        artifact = write_jsonl(ctx, GENERATED_ARTIFACT, rows)
        return {"calls": calls, "generated": len(rows), "malformed_answers": malformed,
                "answers_restored": answers.restored, "teacher_usage": answers.usage, "artifact": artifact}
