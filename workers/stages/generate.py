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
from app.specs import Row, TaskSpec
from workers import prompts
from workers.stages.base import StageContext
from workers.stages.common import answer_each, write_jsonl
from workers.teacher import Teacher

PER_CALL = 5
#: Ask for more than needed: curation drops duplicates and invalid rows.
OVERGENERATE = 1.4


def plan_buckets(spec: TaskSpec, calls: int, seed: int) -> list[dict[str, str]]:
    """One spread bucket per call: labels take turns, and each label walks the same shuffled
    list of (topic, style, length) combinations, so every label sees the same spread."""
    labels: list[str | None] = [label.name for label in spec.labels] or [None]
    combos = list(itertools.product(spec.topics, spec.styles, spec.lengths))
    random.Random(seed).shuffle(combos)
    buckets = []
    for i in range(calls):
        topic, style, length = combos[(i // len(labels)) % len(combos)]
        bucket = {"topic": topic, "style": style, "length": length}
        label = labels[i % len(labels)]
        if label is not None:
            bucket["label"] = label
        buckets.append(bucket)
    return buckets


def bucket_id(bucket: dict[str, str]) -> str:
    return "|".join(f"{k}={v}" for k, v in bucket.items())


async def generate_one(teacher: Teacher, spec: TaskSpec, bucket: dict[str, str], seeds: Sequence[Row]) -> list[str]:
    """PER_CALL inputs for one bucket."""
    answer = await teacher.chat(prompts.generate_messages(spec, bucket, seeds, PER_CALL),
                                max_tokens=90 * PER_CALL, temperature=1.0,
                                json_schema=prompts.generate_schema(PER_CALL))
    inputs = json.loads(answer.text)["inputs"]
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
            rows += [{"input": text, "bucket": bucket_id(bucket), "intended_label": bucket.get("label")}
                     for text in result]
        artifact = write_jsonl(ctx, GENERATED_ARTIFACT, rows)
        return {"calls": calls, "generated": len(rows), "malformed_answers": malformed,
                "answers_restored": answers.restored, "teacher_usage": answers.usage, "artifact": artifact}
