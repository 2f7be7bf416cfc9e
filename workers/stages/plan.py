"""plan: the teacher turns the person's task (+ labels, + seed examples) into a task spec.

The plan is a handful of short questions asked at once (task type, instruction, label
descriptions, topics, styles): on a CPU teacher that is several times faster than one long answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from app.specs import TASK_TYPE_NAMES, JobSpec, Label, TaskSpec, TaskType
from workers import prompts
from workers.stages.base import StageContext, StageError
from workers.stages.common import with_teacher
from workers.teacher import Teacher

DEFAULT_SPREAD = {
    "topics": ["everyday situations"],
    "styles": ["plain"],
    "lengths": ["one short sentence", "two or three sentences", "a short paragraph"],
}


class _Planner:
    """Asks the planning questions; counts answers that did not parse."""

    def __init__(self, teacher: Teacher, request: JobSpec, ctx: StageContext) -> None:
        self.teacher, self.request, self.ctx = teacher, request, ctx
        self.malformed = self.answered = 0
        # instruction, topics, styles, one description per label; more once the teacher names labels.
        self.expected = 3 + len(request.labels or [])

    def _done(self) -> None:
        self.answered += 1
        self.ctx.progress(min(self.answered, self.expected), self.expected)

    async def items(self, key: str, low: int, high: int) -> list[str]:
        answer = await self.teacher.chat(prompts.plan_question(self.request, prompts.PLAN_QUESTIONS[key]),
                                         max_tokens=20 * high, json_schema=prompts.list_schema(low, high))
        self._done()
        try:
            return [str(item) for item in json.loads(answer.text)["items"]]
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
                names = await self.items("labels", 2, 8)
                self.expected += len(names)
            descriptions = await asyncio.gather(*(self.text(prompts.label_question(n), 40) for n in names))
            result["labels"] = [{"name": n, "description": d} for n, d in zip(names, descriptions, strict=True)]
        elif task_type == TaskType.EXTRACTION and not self.request.fields:
            self.expected += 1
            result["output_fields"] = await self.items("output_fields", 1, 8)
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
            self.items("topics", 3, 6), self.items("styles", 1, 3),
        )
        return {**outputs, "instruction": instruction, "topics": topics, "styles": styles}


class PlanStage:
    name = "plan"
    queue = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        async def work(teacher: Teacher) -> tuple[dict[str, Any], int]:
            planner = _Planner(teacher, ctx.spec, ctx)
            return await planner.plan(), planner.malformed

        # Short questions someone is waiting on: they go ahead of other jobs' bulk labelling.
        (raw, malformed), usage = with_teacher(ctx, work, kind="interactive")
        task_spec = build_task_spec(ctx.spec, raw).model_dump(mode="json")
        return {"task_spec": task_spec, "malformed_answers": malformed, "teacher_usage": usage}


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
    spread = {key: _clean_list(raw.get(key)) or default for key, default in DEFAULT_SPREAD.items()}
    return TaskSpec(
        task=request.task, task_type=task_type, instruction=str(raw.get("instruction") or request.task).strip(),
        labels=labels, output_fields=names, fields=fields,
        tools=request.tools if task_type == TaskType.TOOL_CALLING else [],
        tools_in_prompt=request.tools_in_prompt and task_type == TaskType.TOOL_CALLING, qa_mode=qa_mode, **spread,
    )


def _field_names(value: Any) -> list[str]:
    # The teacher's proposed field names as JSON keys: snake_case, at most 8.
    names = [re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") for name in _clean_list(value)]
    return list(dict.fromkeys(n for n in names if n and not n[0].isdigit()))[:8]


def _clean_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return list(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
