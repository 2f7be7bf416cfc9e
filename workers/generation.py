"""Generating inputs with the teacher: the spread buckets of a round and the call for one bucket.

Not a stage: the generate stage makes the first round, and curation's top-up rounds for labels
short of their share (`label_buckets`) call the same code."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Sequence

from app.answer_shapes import parameter_names
from app.specs import Row, TaskSpec, TaskType
from workers import prompts
from workers.teacher import Teacher

PER_CALL = 5
#: Ask for more than needed: curation drops duplicates and invalid rows.
OVERGENERATE = 1.4

Bucket = dict[str, str]


def input_kinds(spec: TaskSpec) -> list[Bucket]:
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
        # A request for a tool that states none of its values (or leaves out a required one) gets a
        # question back, not a call of invented values, whether or not the tool requires anything.
        asking = [name for name in names if any(parameter_names(spec.tools, name))]
        # Calls twice as often as each other kind (they are what the student is for), the other
        # kinds woven in early so that even a job of a few calls has requests needing no call.
        # A tool with optional parameters gets requests stating all its values and requests stating
        # only some (real requests rarely give every optional value; a student shown only complete
        # requests fills every argument, inventing what a request lacks).
        calls = [{"kind": "call", "tool": name} for name in names]
        calls += [{"kind": "call", "tool": name, **({"values": "some"} if parameter_names(spec.tools, name)[1] else {})}
                  for name in names]
        others = [{"kind": prompts.NO_CALL}]
        others += [{"kind": prompts.MISSING_ARGUMENT, "tool": name} for name in asking[:max(1, len(names) // 2)]]
        kinds: list[Bucket] = []
        for call in calls:
            kinds += [call, others.pop(0)] if others else [call]
        return kinds + others
    return [{}]


def topics_of(spec: TaskSpec, kind: Bucket) -> list[str]:
    """The topics inputs of one kind are written about: a label's own planned topics, else the shared ones."""
    label = kind.get("label")
    return (spec.label_topics.get(label) if label else None) or spec.topics


def _combos(spec: TaskSpec, topics: list[str], seed: int) -> list[tuple[str, str, str]]:
    combos = list(itertools.product(topics, spec.styles, spec.lengths))
    random.Random(seed).shuffle(combos)
    return combos


def plan_buckets(spec: TaskSpec, calls: int, seed: int) -> list[Bucket]:
    """One spread bucket per call: the input kinds take turns, and each kind walks a shuffled list
    of (topic, style, length) combinations of its topics (a label's own, else the shared ones), so
    every kind sees the same spread of styles and lengths."""
    kinds = input_kinds(spec)
    walks = [_combos(spec, topics_of(spec, kind), seed) for kind in kinds]
    buckets = []
    for i in range(calls):
        combos = walks[i % len(kinds)]
        topic, style, length = combos[(i // len(kinds)) % len(combos)]
        buckets.append({"topic": topic, "style": style, "length": length, **kinds[i % len(kinds)]})
    return buckets


def label_buckets(spec: TaskSpec, label: str, calls: int, seed: int, start: int) -> list[Bucket]:
    """`calls` buckets all meant for `label` (a classification top-up round), walking that label's
    combinations from place `start`: given the number of calls the label had before (e.g. those
    `plan_buckets` gave it), the walk goes on where they left off. Bucket `j`'s seed turn is `start + j`."""
    combos = _combos(spec, topics_of(spec, {"label": label}), seed)
    return [{"topic": topic, "style": style, "length": length, "label": label}
            for topic, style, length in (combos[(start + j) % len(combos)] for j in range(calls))]


def seed_turn(spec: TaskSpec, index: int) -> int:
    """The seed-example turn of call `index` of `plan_buckets`: its place among the calls showing
    the same seeds (a classification call shows its own label's seeds, so its place among its label's calls)."""
    if spec.task_type == TaskType.CLASSIFICATION and spec.labels:
        return index // len(spec.labels)
    return index


def bucket_id(bucket: Bucket) -> str:
    return "|".join(f"{k}={v}" for k, v in bucket.items())


async def generate_one(teacher: Teacher, spec: TaskSpec, bucket: Bucket, seeds: Sequence[Row],
                       turn: int = 0, real: Sequence[str] = ()) -> list[str]:
    """PER_CALL inputs for one bucket (for open-book QA each a passage followed by its question);
    `turn` picks which window of seed examples and of `real` inputs (the person's imported ones,
    `curation.guide_inputs`) the prompt shows (`seed_turn`)."""
    return await _written_inputs(teacher, spec, prompts.generate_messages(spec, bucket, seeds, PER_CALL, turn, real))


async def generate_like(teacher: Teacher, spec: TaskSpec, miss: Row) -> list[str]:
    """PER_CALL new inputs like `miss`, a row a student got wrong (the error-driven round)."""
    return await _written_inputs(teacher, spec, prompts.like_miss_messages(spec, miss.input, miss.output, PER_CALL))


async def _written_inputs(teacher: Teacher, spec: TaskSpec, messages: list[dict[str, str]]) -> list[str]:
    """The teacher's PER_CALL inputs for one generation prompt (open-book QA: passage + question)."""
    passages = spec.task_type == TaskType.QA and spec.qa_mode == "open_book"
    answer = await teacher.chat(messages, max_tokens=(160 if passages else 90) * PER_CALL, temperature=1.0,
                                json_schema=prompts.generate_schema(PER_CALL, passages))
    inputs = json.loads(answer.text)["inputs"]
    if passages:
        return [prompts.open_book_input(item["passage"], item["question"]) for item in inputs
                if isinstance(item, dict) and str(item.get("passage", "")).strip()
                and str(item.get("question", "")).strip()]
    return [text.strip() for text in inputs if isinstance(text, str) and text.strip()]


async def generate_inputs(
    teacher: Teacher, spec: TaskSpec, buckets: list[Bucket], seeds: Sequence[Row],
    on_done: Callable[[int, int], None] | None = None, turns: Sequence[int] | None = None,
) -> list[list[str] | BaseException]:
    """Ask the teacher for PER_CALL inputs per bucket, with the teacher's bound on calls in flight.
    `turns`: each bucket's seed turn (default: `seed_turn` of its place, as for `plan_buckets`)."""
    places = list(turns) if turns is not None else [seed_turn(spec, i) for i in range(len(buckets))]

    async def one(item: tuple[Bucket, int]) -> list[str]:
        return await generate_one(teacher, spec, item[0], seeds, item[1])

    return await teacher.map(list(zip(buckets, places, strict=True)), one, on_done)
