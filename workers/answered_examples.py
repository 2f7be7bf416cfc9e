"""The person's seed examples shown answered to the teacher: which few (`shown_examples`, chosen
once by the plan stage into `TaskSpec.answered_examples`), each written as the teacher is asked to
answer (`answer_turn`), and the conversation turns the label prompt puts them in."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from app.answer_shapes import load_object, parameter_names
from app.specs import Row, TaskSpec, TaskType, is_refusal

#: The reply branch of a tool-calling answer: the teacher answers in plain text inside it.
REPLY_KEY = "reply"

#: How many of the person's answered seed examples the teacher sees before each input it answers.
ANSWERED_EXAMPLES = 4


def answer_turn(task_spec: TaskSpec, row: Row) -> str | None:
    """A seed example's output written as the teacher is asked to answer (the label; the JSON
    object with every field; the call with every argument, or `{"reply": ...}`; the answer), or
    None when it does not fit the task: an unknown label, a call of a tool not offered, no output."""
    output = row.output.strip()
    if not output:
        return None
    if task_spec.task_type == TaskType.CLASSIFICATION:
        return output if output in task_spec.label_names else None
    if task_spec.task_type == TaskType.EXTRACTION:
        found = load_object(output)
        if found is None:
            return None
        return json.dumps({f.name: found.get(f.name) for f in task_spec.extraction_fields}, ensure_ascii=False)
    if task_spec.task_type == TaskType.TOOL_CALLING:
        call = load_object(output)
        if call is None or "name" not in call:
            return json.dumps({REPLY_KEY: output}, ensure_ascii=False)
        arguments = call.get("arguments")
        offered = any(tool["function"]["name"] == call["name"] for tool in task_spec.tools)
        if not offered or not isinstance(arguments, dict):
            return None
        required, optional = parameter_names(task_spec.tools, str(call["name"]))
        # Every argument named, unstated ones null: the shape the label prompt asks for.
        return json.dumps({"name": call["name"], "arguments": {p: arguments.get(p) for p in required + optional}},
                          ensure_ascii=False)
    return output


def _kind(task_spec: TaskSpec, answer: str) -> str:
    # What sort of answer a seed shows, so the few shown cover the sorts there are.
    if task_spec.task_type == TaskType.CLASSIFICATION:
        return answer
    found = load_object(answer) or {}
    if task_spec.task_type == TaskType.TOOL_CALLING:
        return str(found.get("name", REPLY_KEY))
    if task_spec.task_type == TaskType.EXTRACTION:
        return "some" if any(v not in (None, [], "") for v in found.values()) else "none"
    return "refusal" if is_refusal(answer) else "answer"


def shown_examples(task_spec: TaskSpec, examples: Sequence[Row], held_out: Callable[[str], bool],
                   limit: int = ANSWERED_EXAMPLES) -> list[Row]:
    """Up to `limit` of the person's seed examples to show the teacher answered: those whose
    output fits the task and whose input is not `held_out` (a test row), taken in turn from each
    sort of answer (each label; each tool and the plain reply; filled and empty objects), in the
    person's order."""
    by_kind: dict[str, list[Row]] = {}
    for row in examples:
        answer = answer_turn(task_spec, row)
        if answer is not None and not held_out(row.input):
            by_kind.setdefault(_kind(task_spec, answer), []).append(row)
    chosen: list[Row] = []
    queues = list(by_kind.values())
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def answered_turns(task_spec: TaskSpec) -> list[dict[str, str]]:
    """The chosen seeds as earlier turns of the conversation, for after the system message and
    before the input (so the server's prefix cache keeps them across every input)."""
    turns: list[dict[str, str]] = []
    for row in task_spec.answered_examples:
        answer = answer_turn(task_spec, row)
        if answer is not None:
            turns += [{"role": "user", "content": row.input}, {"role": "assistant", "content": answer}]
    return turns
