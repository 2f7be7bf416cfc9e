"""generate: the teacher writes inputs spread over topics, styles, lengths (and intended labels)."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from typing import Any

from workers import prompts
from workers.stages.base import StageContext
from workers.stages.common import GENERATED, job_seed, task_spec, with_teacher, write_jsonl
from workers.teacher import Teacher

PER_CALL = 5
#: Ask for more than needed: curation drops duplicates and invalid rows.
OVERGENERATE = 1.4


def plan_buckets(spec: dict[str, Any], calls: int, seed: int) -> list[dict[str, str]]:
    """One spread bucket per call: labels take turns, and each label walks the same shuffled
    list of (topic, style, length) combinations, so every label sees the same spread."""
    labels = [l["name"] for l in spec["labels"]] or [None]
    combos = list(itertools.product(spec["topics"], spec["styles"], spec["lengths"]))
    random.Random(seed).shuffle(combos)
    buckets = []
    for i in range(calls):
        topic, style, length = combos[(i // len(labels)) % len(combos)]
        bucket = {"topic": topic, "style": style, "length": length}
        if labels[i % len(labels)] is not None:
            bucket["label"] = labels[i % len(labels)]
        buckets.append(bucket)
    return buckets


def bucket_id(bucket: dict[str, str]) -> str:
    return "|".join(f"{k}={v}" for k, v in bucket.items())


async def generate_inputs(
    teacher: Teacher, spec: dict[str, Any], buckets: list[dict[str, str]], seeds: list[dict[str, str]],
    on_done: Callable[[int, int], None] | None = None,
) -> list[list[str] | BaseException]:
    """Ask the teacher for PER_CALL inputs per bucket, all calls in flight at once."""

    async def one(bucket: dict[str, str]) -> list[str]:
        answer = await teacher.chat(prompts.generate_messages(spec, bucket, seeds, PER_CALL),
                                    max_tokens=90 * PER_CALL, temperature=1.0,
                                    json_schema=prompts.generate_schema(PER_CALL))
        inputs = json.loads(answer.text)["inputs"]
        return [text.strip() for text in inputs if isinstance(text, str) and text.strip()]

    return await teacher.map(buckets, one, on_done)


class GenerateStage:
    name = "generate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = task_spec(ctx)
        wanted = ctx.spec["num_examples"]
        calls = math.ceil(wanted * OVERGENERATE / PER_CALL)
        buckets = plan_buckets(spec, calls, job_seed(ctx))
        seeds = ctx.spec.get("examples", [])
        results, usage = with_teacher(ctx, lambda t: generate_inputs(t, spec, buckets, seeds, ctx.progress))
        rows, malformed = [], 0
        for bucket, result in zip(buckets, results):
            if isinstance(result, BaseException):
                malformed += 1
                continue
            rows += [{"input": text, "bucket": bucket_id(bucket), "intended_label": bucket.get("label")} for text in result]
        artifact = write_jsonl(ctx, GENERATED, rows)
        return {"calls": calls, "generated": len(rows), "malformed_answers": malformed,
                "teacher_usage": usage, "artifact": artifact}
