"""plan: the teacher turns the person's task (+ labels, + seed examples) into a task spec.

The plan is a handful of short questions asked at once (task type, instruction, label
descriptions, topics, styles, and for classification each label's own topics): on a CPU teacher
that is several times faster than one long answer. A degenerate list of topics or styles (single
letters, the label names) is asked again (`check_plan_list`; counted in `plan_reasked`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

from app.specs import TASK_TYPE_NAMES, JobSpec, Label, TaskSpec, TaskType
from workers import answered_examples, prompts
from workers.curation import normalize
from workers.stages.base import StageContext, StageError
from workers.stages.common import with_teacher
from workers.teacher import Teacher

DEFAULT_SPREAD = {
    "topics": ["everyday situations"],
    "styles": ["plain"],
    "lengths": ["one short sentence", "two or three sentences", "a short paragraph"],
}
#: A degenerate list answer (topics, styles) is asked again this many times at most, warmer, with
#: a note on what was wrong; then its cleaned items (or DEFAULT_SPREAD) are used.
MAX_REASKS = 2
REASK_TEMPERATURE = 0.7
#: A style named in more words than this is an example message, not a style.
MAX_STYLE_WORDS = 6
#: Fewer letters than this is no topic or style: a plan once gave the styles "a", "b", "c".
MIN_LETTERS = 3


def _norm(text: str) -> str:
    return " ".join(re.split(r"[\W_]+", text.lower())).strip()


def is_example_not_style(item: str) -> bool:
    """A "style" that is an example message rather than a way of writing: an SMS plan's styles were
    the slogans "Get your free prize! Hurry!", so every input, ham ones too, was asked to read as spam."""
    return any(mark in item for mark in "!?") or len(item.split()) > MAX_STYLE_WORDS


def check_plan_list(items: Sequence[str], label_names: Sequence[str], minimum: int,
                    styles: bool = False) -> tuple[list[str], list[str]]:
    """One list answer of the plan: the items worth keeping (distinct, at least MIN_LETTERS letters,
    not a label's name; for `styles`, no example messages) and what was wrong with it, empty when
    nothing (any dropped item, or fewer than `minimum` kept, makes the answer degenerate)."""
    labels = {_norm(name) for name in label_names}
    kept: dict[str, str] = {}
    short = named = examples = False
    for item in (str(i).strip() for i in items):
        if sum(ch.isalpha() for ch in item) < MIN_LETTERS:
            short = True
        elif _norm(item) in labels:
            named = True
        elif styles and is_example_not_style(item):
            examples = True
        else:
            kept.setdefault(_norm(item), item)
    problems = []
    if short:
        problems.append("each item must be a few words, not a letter or a code")
    if named:
        problems.append(f"do not use the label names ({', '.join(label_names)}) as items")
    if examples:
        # No example style here: a small teacher copies it (SST-2's styles came back as the
        # example "casual text between friends" and a "professional business email").
        problems.append(f"name each way of writing in at most {MAX_STYLE_WORDS} words, without punctuation; "
                        "do not write an example message")
    if len(kept) < minimum:
        problems.append(f"give at least {minimum} different items")
    return list(kept.values()), problems


class _Planner:
    """Asks the planning questions; counts answers that did not parse and re-asked questions."""

    def __init__(self, teacher: Teacher, request: JobSpec, ctx: StageContext) -> None:
        self.teacher, self.request, self.ctx = teacher, request, ctx
        self.malformed = self.answered = self.reasked = 0
        self.label_names: list[str] = list(request.labels or [])
        # Questions per label: its description, and with plan_per_label its topics.
        self.per_label = 2 if request.curation.plan_per_label else 1
        # instruction, topics, styles, the per-label ones; more once the teacher names labels or re-asks.
        self.expected = 3 + self.per_label * len(self.label_names)

    def _done(self) -> None:
        self.answered += 1
        self.ctx.progress(min(self.answered, self.expected), self.expected)

    async def items(self, question: str, low: int, high: int, checked: bool = False, styles: bool = False
                    ) -> list[str]:
        """A list answer. A `checked` one (topics, styles) that is degenerate (`check_plan_list`) is
        asked again, up to MAX_REASKS times; then the most items any try kept are used."""
        best: list[str] = []
        problems: list[str] = []
        for attempt in range(1 + (MAX_REASKS if checked else 0)):
            if attempt:
                self.reasked += 1
                self.expected += 1
            asked = f"{question}\n{prompts.reask_note(problems)}" if problems else question
            answer = await self.teacher.chat(prompts.plan_question(self.request, asked), max_tokens=20 * high,
                                             temperature=REASK_TEMPERATURE if attempt else 0.0,
                                             json_schema=prompts.list_schema(low, high))
            self._done()
            items = self._parse(answer.text)
            if not checked:
                return items
            kept, problems = check_plan_list(items, self.label_names, low, styles)
            best = kept if len(kept) > len(best) else best
            if not problems:
                return kept
        return best

    def _parse(self, text: str) -> list[str]:
        try:
            return [str(item) for item in json.loads(text)["items"]]
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return []

    async def text(self, question: str, max_tokens: int) -> str:
        answer = await self.teacher.chat(prompts.plan_question(self.request, question), max_tokens=max_tokens)
        self._done()
        return answer.text.strip().splitlines()[0].strip() if answer.text.strip() else ""

    async def task_type(self) -> str:
        if self.request.task_type:
            return self.request.task_type.value
        if self.request.labels:
            return TaskType.CLASSIFICATION.value
        self.expected += 1
        answer = await self.teacher.chat(prompts.plan_question(self.request, prompts.PLAN_QUESTIONS["task_type"]),
                                         max_tokens=8, choices=TASK_TYPE_NAMES)
        self._done()
        return answer.text.strip()

    async def outputs(self) -> dict[str, Any]:
        """Task type, then what its outputs are: described labels, or extraction fields."""
        task_type = await self.task_type()
        result: dict[str, Any] = {"task_type": task_type}
        if task_type == TaskType.CLASSIFICATION:
            names = self.request.labels
            if not names:
                self.expected += 1
                names = await self.items(prompts.PLAN_QUESTIONS["labels"], 2, 8)
                self.label_names = names
                self.expected += self.per_label * len(names)
            descriptions, topics = await asyncio.gather(
                asyncio.gather(*(self.text(prompts.label_question(n), 40) for n in names)),
                asyncio.gather(*(self.items(prompts.label_topics_question(n), 3, 5, checked=True)
                                 for n in names if self.per_label > 1)))
            result["labels"] = [{"name": n, "description": d} for n, d in zip(names, descriptions, strict=True)]
            if self.per_label > 1:
                result["label_topics"] = dict(zip(names, topics, strict=True))
        elif task_type == TaskType.EXTRACTION and not self.request.fields:
            self.expected += 1
            result["output_fields"] = await self.items(prompts.PLAN_QUESTIONS["output_fields"], 1, 8)
        elif task_type == TaskType.QA:
            # The person's rows say it better than a guess from the task's wording: a plan took a
            # task whose test rows held abstracts and questions for closed-book questions.
            rows = [*self.request.examples, *self.request.test_set]
            result["qa_mode"] = self.request.qa_mode or prompts.qa_mode_of_rows(rows) or await self.qa_mode()
        return result

    async def qa_mode(self) -> str:
        self.expected += 1
        answer = await self.teacher.chat(prompts.plan_question(self.request, prompts.PLAN_QUESTIONS["qa_mode"]),
                                         max_tokens=8, choices=prompts.QA_MODES)
        self._done()
        return answer.text.strip()

    async def plan(self) -> dict[str, Any]:
        outputs, instruction, topics, styles = await asyncio.gather(
            self.outputs(), self.text(prompts.PLAN_QUESTIONS["instruction"], 60),
            self.items(prompts.PLAN_QUESTIONS["topics"], 3, 6, checked=True),
            self.items(prompts.PLAN_QUESTIONS["styles"], 2, 3, checked=True, styles=True),
        )
        return {**outputs, "instruction": instruction, "topics": topics, "styles": styles}


class PlanStage:
    name = "plan"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        async def work(teacher: Teacher) -> tuple[dict[str, Any], _Planner]:
            planner = _Planner(teacher, ctx.spec, ctx)
            return await planner.plan(), planner

        # Short questions someone is waiting on: they go ahead of other jobs' bulk labelling.
        (raw, planner), usage = with_teacher(ctx, work, kind="interactive")
        task_spec = build_task_spec(ctx.spec, raw).model_dump(mode="json")
        return {"task_spec": task_spec, "malformed_answers": planner.malformed, "plan_reasked": planner.reasked,
                "teacher_usage": usage}


def build_task_spec(request: JobSpec, raw: dict[str, Any]) -> TaskSpec:
    """Merge the teacher's plan with what the person said; the person's choices always win."""
    answered = raw.get("task_type")
    if request.task_type is not None:
        task_type = request.task_type
    elif answered in TASK_TYPE_NAMES:
        task_type = TaskType(answered)
    else:
        task_type = TaskType.CLASSIFICATION if request.labels else TaskType.QA
    described: dict[str, str] = {}
    for item in raw.get("labels") or []:
        if isinstance(item, dict) and str(item.get("name", "")).strip():
            described.setdefault(str(item["name"]).strip(), str(item.get("description", "")).strip())
    names = request.labels or list(described)
    classification = task_type == TaskType.CLASSIFICATION
    if classification and len(names) < 2:
        raise StageError("no_labels", "the teacher proposed fewer than two labels; give them in `labels`")
    labels = [Label(name=n, description=described.get(n) or n) for n in names] if classification else []
    extraction = task_type == TaskType.EXTRACTION
    fields = request.fields if extraction else []
    names = [f.name for f in fields] or (_field_names(raw.get("output_fields")) if extraction else [])
    if extraction and not names:
        raise StageError("no_output_fields", "the teacher proposed no output fields; give them in `fields`")
    if task_type == TaskType.TOOL_CALLING and not request.tools:
        raise StageError("no_tools", "a tool_calling task needs `tools`: the functions the student may call")
    qa_mode = None
    if task_type == TaskType.QA:
        qa_mode = raw.get("qa_mode") if raw.get("qa_mode") in prompts.QA_MODES else "closed_book"
    # Checked again here: a label the teacher proposed was not known when topics were asked.
    label_names = [label.name for label in labels]
    spread = {key: _plan_items(raw.get(key), label_names, key == "styles") or default
              for key, default in DEFAULT_SPREAD.items()}
    planned = raw.get("label_topics")
    planned = planned if isinstance(planned, dict) else {}
    label_topics = {name: kept for name in label_names if (kept := _plan_items(planned.get(name), label_names))}
    spec = TaskSpec(
        task=request.task, task_type=task_type, instruction=str(raw.get("instruction") or request.task).strip(),
        labels=labels, output_fields=names, fields=fields,
        tools=request.tools if task_type == TaskType.TOOL_CALLING else [],
        tools_in_prompt=request.tools_in_prompt and task_type == TaskType.TOOL_CALLING, qa_mode=qa_mode,
        label_topics=label_topics, **spread,
    )
    tests = {normalize(row.input) for row in request.test_set}
    shown = answered_examples.shown_examples(spec, request.examples, lambda text: normalize(text) in tests)
    return spec.model_copy(update={"answered_examples": shown})


def _field_names(value: Any) -> list[str]:
    # The teacher's proposed field names as JSON keys: snake_case, at most 8.
    names = [re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") for name in _clean_list(value)]
    return list(dict.fromkeys(n for n in names if n and not n[0].isdigit()))[:8]


def _plan_items(value: Any, label_names: Sequence[str], styles: bool = False) -> list[str]:
    return check_plan_list(_clean_list(value), label_names, 1, styles)[0]


def _clean_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return list(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
