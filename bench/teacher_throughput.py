"""Teacher stage throughput vs a raw saturating client, on the same server, model and prompts.

Runs the generate and label steps twice against one teacher server:
  1. through the stage code (`generate_inputs`, `label_rows`: the Teacher client with its
     concurrency bound, retries and answer parsing), and
  2. through a raw `AsyncOpenAI` client firing the identical requests all at once,
then prints completion tokens/s and examples/s for both and their ratio (target >= 0.9), per run
and as the median of `--repeats` runs (a CPU server's runs differ by tens of percent), and
writes them to bench/results/teacher_throughput.json (or `--out`). The stages run as the service
runs them: streamed answers, TEACHER_CONCURRENCY (default 8) requests in flight; the raw client
keeps `--raw-concurrency` (default 32) in flight, enough to saturate the server.
The raw run labels the inputs the stage run generated, so both label the same texts. Every
prompt is sent once with max_tokens=1 before either run measures it, so both find the server's
prefix cache equally warm.

    TEACHER_URL=http://127.0.0.1:8011/v1 python bench/teacher_throughput.py [--calls 8] [--repeats 3] [--out FILE]

Without TEACHER_URL it starts the bundled vLLM teacher itself (a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import get_settings  # noqa: E402
from app.specs import Row, TaskSpec  # noqa: E402
from workers import prompts  # noqa: E402
from workers.bundled_models import TEACHER  # noqa: E402
from workers.generation import PER_CALL, generate_inputs, plan_buckets  # noqa: E402
from workers.labelling import TOP_LOGPROBS, label_rows  # noqa: E402
from workers.teacher import Teacher, TeacherConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "teacher_throughput.json"

SPEC = TaskSpec.model_validate({
    "task": "Decide whether a movie review sentence is positive or negative",
    "task_type": "classification",
    "instruction": "Label the sentiment the sentence expresses about the movie.",
    "labels": [{"name": "positive", "description": "the writer liked the movie"},
               {"name": "negative", "description": "the writer disliked the movie"}],
    "output_fields": [],
    "topics": ["acting", "plot", "music", "visual effects"],
    "styles": ["casual", "critic"],
    "lengths": ["one short sentence", "two sentences"],
})


async def warm(url: str, model: str, conversations: list[list[dict[str, str]]]) -> None:
    """Prefill every prompt once so neither measured run pays for a cold prefix cache."""
    client = AsyncOpenAI(base_url=url, api_key="EMPTY", timeout=600, max_retries=0)
    await asyncio.gather(
        *(client.chat.completions.create(model=model, messages=cast(list[ChatCompletionMessageParam], m), max_tokens=1)
          for m in conversations)
    )
    await client.close()


async def stage_run(url: str, model: str, buckets: list[dict[str, str]]) -> dict:
    settings = get_settings()  # the stages' own client settings (workers/stages/common.py `teacher_for`)
    teacher = Teacher(TeacherConfig(url, model, concurrency=settings.teacher_concurrency,
                                    silence_timeout=settings.teacher_timeout, priority=settings.teacher_priority))
    await warm(url, model, [prompts.generate_messages(SPEC, b, [], PER_CALL) for b in buckets])
    t0 = time.perf_counter()
    generated = await generate_inputs(teacher, SPEC, buckets, [])
    t1 = time.perf_counter()
    texts = [text for batch in generated if not isinstance(batch, BaseException) for text in batch]
    await warm(url, model, [prompts.label_messages(SPEC, text) for text in texts])
    t1_warm = time.perf_counter()
    labeled = await label_rows(teacher, SPEC, [Row(input=text, output="") for text in texts])
    t2 = time.perf_counter()
    await teacher.close()
    return {"texts": texts, "gen_s": t1 - t0, "label_s": t2 - t1_warm, "tokens": teacher.usage["completion_tokens"],
            "examples": sum(not isinstance(r, BaseException) for r in labeled)}


async def raw_run(url: str, model: str, buckets: list[dict[str, str]], texts: list[str], concurrency: int) -> dict:
    client = AsyncOpenAI(base_url=url, api_key="EMPTY", timeout=600, max_retries=0)
    slots = asyncio.Semaphore(concurrency)
    labels = SPEC.label_names

    async def call(**kwargs) -> int:
        async with slots:
            response = await client.chat.completions.create(model=model, **kwargs)
        return response.usage.completion_tokens

    t0 = time.perf_counter()
    gen_tokens = await asyncio.gather(*(call(
        messages=prompts.generate_messages(SPEC, b, [], PER_CALL), max_tokens=90 * PER_CALL, temperature=1.0,
        response_format={
            "type": "json_schema", "json_schema": {"name": "answer", "schema": prompts.generate_schema(PER_CALL)},
        },
    ) for b in buckets))
    t1 = time.perf_counter()
    label_tokens = await asyncio.gather(*(call(
        messages=prompts.label_messages(SPEC, text), max_tokens=16, temperature=0.0, logprobs=True,
        top_logprobs=TOP_LOGPROBS, extra_body={"structured_outputs": {"choice": labels}},
    ) for text in texts))
    t2 = time.perf_counter()
    await client.close()
    return {"gen_s": t1 - t0, "label_s": t2 - t1, "tokens": sum(gen_tokens) + sum(label_tokens), "examples": len(texts)}


def summarise(repeat: int, stage: dict, raw: dict) -> dict:
    """One repeat's figures per client and their ratio, printed and returned."""
    for name, r in (("stages", stage), ("raw client", raw)):
        seconds = r["gen_s"] + r["label_s"]
        r["tok_s"], r["ex_s"] = r["tokens"] / seconds, r["examples"] / seconds
        print(f"run {repeat + 1}  {name:10s}  generate {r['gen_s']:6.1f} s  label {r['label_s']:6.1f} s  "
              f"{r['tokens']:6d} tokens  {r['tok_s']:6.2f} tok/s  {r['ex_s']:6.3f} examples/s  "
              f"({r['ex_s'] * 60:.1f} examples/min)")
    ratios = {"tokens_per_s": stage["tok_s"] / raw["tok_s"], "examples_per_s": stage["ex_s"] / raw["ex_s"]}
    print(f"run {repeat + 1}  ratio stages/raw: {ratios['tokens_per_s']:.2f} (tokens/s), "
          f"{ratios['examples_per_s']:.2f} (examples/s)")
    return {"ratio_stages_over_raw": ratios,
            **{name: {k: v for k, v in r.items() if k != "texts"} for name, r in (("stages", stage), ("raw", raw))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="generate calls (each asks for 5 inputs)")
    parser.add_argument("--raw-concurrency", type=int, default=32, help="the raw client's requests in flight")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs of each client, one after the other")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    url, server = os.environ.get("TEACHER_URL"), None
    model = os.environ.get("TEACHER_MODEL", TEACHER.name)
    if not url:
        from tests.support.teacher import TeacherServer

        server = TeacherServer(Path(tempfile.mkdtemp()) / "teacher.log")
        url = server.wait()
    runs = []
    try:
        buckets = plan_buckets(SPEC, args.calls, seed=0)
        for repeat in range(args.repeats):
            stage = asyncio.run(stage_run(url, model, buckets))
            raw = asyncio.run(raw_run(url, model, buckets, stage["texts"], args.raw_concurrency))
            runs.append(summarise(repeat, stage, raw))
    finally:
        if server:
            server.stop()
    medians = {key: statistics.median(run["ratio_stages_over_raw"][key] for run in runs)
               for key in ("tokens_per_s", "examples_per_s")}
    spread = {key: [min(run["ratio_stages_over_raw"][key] for run in runs),
                    max(run["ratio_stages_over_raw"][key] for run in runs)] for key in medians}
    print(f"median ratio stages/raw over {len(runs)} runs: {medians['tokens_per_s']:.2f} tokens/s "
          f"(range {spread['tokens_per_s'][0]:.2f}-{spread['tokens_per_s'][1]:.2f}), "
          f"{medians['examples_per_s']:.2f} examples/s "
          f"(range {spread['examples_per_s'][0]:.2f}-{spread['examples_per_s'][1]:.2f})")
    results = {
        "calls": args.calls, "model": model, "stage_concurrency": get_settings().teacher_concurrency,
        "raw_concurrency": args.raw_concurrency, "repeats": len(runs),
        "median_ratio_stages_over_raw": medians, "ratio_range": spread, "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
