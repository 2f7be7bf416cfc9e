"""generate: the teacher writes inputs spread over topics, styles, lengths (and intended labels),
guided by the person's seed examples and a rotating few of their imported real inputs.

Each call's inputs are kept as they arrive, keyed by its bucket, so a retried or resumed run asks
only for the buckets not written yet. The buckets and the call live in `workers.generation`."""

from __future__ import annotations

import math
from typing import Any

from app.artifacts import GENERATED_ARTIFACT
from workers.curation import guide_inputs
from workers.generation import OVERGENERATE, PER_CALL, bucket_id, generate_one, plan_buckets, seed_turn
from workers.stages.base import StageContext
from workers.stages.common import answer_each, write_jsonl


class GenerateStage:
    name = "generate"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        spec = ctx.task_spec()
        calls = math.ceil(ctx.spec.num_examples * OVERGENERATE / PER_CALL)
        buckets = plan_buckets(spec, calls, ctx.spec.seed)
        seeds = ctx.spec.examples
        real = guide_inputs(ctx.spec.inputs, [row.input for row in ctx.spec.test_set], ctx.spec.seed)
        items = [(bucket, seed_turn(spec, i)) for i, bucket in enumerate(buckets)]
        answers = answer_each(ctx, items, [f"{i}:{bucket_id(bucket)}" for i, bucket in enumerate(buckets)],
                              lambda t, item: generate_one(t, spec, item[0], seeds, item[1], real))
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
                # Imported inputs the prompts take turns showing as examples of real ones.
                **({"guide_inputs": len(real)} if real else {}),
                "answers_restored": answers.restored, "teacher_usage": answers.usage, "artifact": artifact}
